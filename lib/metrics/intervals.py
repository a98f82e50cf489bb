"""95 % intervals on the difference of two rows of a table: paired over splits, bootstrapped over query identities.

An *effect* is a variant's metric minus a reference's (Table II's "SR+ID+PS − ID", PS-HRNet − the bicubic
baseline, FTWA − FTWA_B, …), measured on the same identity splits. Two sources of noise make it uncertain:

* which test identities a split holds — within a split both rows rank the same queries, so the difference is taken
  query by query (*paired*) and resampled by identity (every query of a drawn identity comes along: a person's
  images are not independent). A seeded bootstrap gives each split's effect its sampling variance v_s;
* which split (and so which training identities and which training run) — the per-split effects d_1 … d_k differ
  by more than their sampling noise when training noise is large.

The interval:

* one split: the percentile interval of the identity bootstrap (it carries test-sampling noise only: one training
  run cannot show training noise);
* k ≥ 2 splits: ``mean(d) ± t(k−1) · sqrt(max(s², mean(v)) / k)`` — Student's t over the paired per-split effects,
  s² their sample variance, floored by the bootstrap's within-split variance (with 2–3 splits s² alone can come out
  near 0 by chance). This keeps its level with few splits, where a bootstrap over 3 splits would cover ~80 %.

The effect is the mean over splits of each split's mean per-query difference. A split's per-query metric is what
:func:`lib.engine.evaluate.score_distances` keeps (``rank1``: 1/0, under the single-shot protocol the fraction of
gallery draws with a Rank-1 hit; ``ap``). Seeded: the same inputs, ``B`` and ``seed`` give the same bounds.
``between_splits=False`` gives the identity bootstrap pooled over the splits instead (test-sampling noise only).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Interval", "paired_interval", "split_differences", "interval_columns", "DEFAULT_B", "LEVEL"]

#: Bootstrap replicates by default (fast enough for ``make demo``: a few ms per effect).
DEFAULT_B = 1000
LEVEL = 0.95


@dataclass(frozen=True)
class Interval:
    """An effect (in the metric's units: fractions for Rank-1 / mAP) and its ``level`` percentile interval."""

    effect: float
    low: float
    high: float
    num_splits: int
    num_queries: int
    replicates: int
    level: float = LEVEL
    method: str = ""

    @property
    def excludes_zero(self) -> bool:
        """The interval lies entirely above or below 0 (a zero-width interval at 0 does not)."""
        return self.low > 0 or self.high < 0

    def text(self, scale: float = 100.0, digits: int = 1) -> str:
        """``+0.8 [−1.9, +3.5]`` (``scale`` 100: fractions shown as points), ``*`` when it excludes 0."""
        f = lambda x: f"{scale * x:+.{digits}f}".replace("-", "−")  # noqa: E731
        return f"{f(self.effect)} [{f(self.low)}, {f(self.high)}]" + (" *" if self.excludes_zero else "")


def split_differences(variant: Mapping[str, Sequence], reference: Mapping[str, Sequence], metric: str = "rank1",
                      where: str = "") -> tuple[np.ndarray, np.ndarray]:
    """``(diff, pid)`` per query of one split: ``variant[metric] − reference[metric]`` over the queries both rows
    scored (matched by ``index``, the query's position in the split), with each query's identity.

    Raises:
        ValueError: a record lacks a key, the two rows give one query different identities (they were not
            evaluated on the same split), or they share no query.
    """
    for name, rec in (("variant", variant), ("reference", reference)):
        missing = [k for k in ("index", "pid", metric) if k not in rec]
        if missing:
            raise ValueError(f"{where}per-query record of the {name}: expected keys index, pid, {metric}; "
                             f"missing {', '.join(missing)}")
        if not len(rec["index"]) == len(rec["pid"]) == len(rec[metric]):
            raise ValueError(f"{where}per-query record of the {name}: index, pid and {metric} differ in length")
    vi, ri = np.asarray(variant["index"], dtype=np.int64), np.asarray(reference["index"], dtype=np.int64)
    common, a, b = np.intersect1d(vi, ri, assume_unique=True, return_indices=True)
    if common.size == 0:
        raise ValueError(f"{where}the two rows share no scored query: they were not evaluated on the same split")
    vp, rp = np.asarray(variant["pid"])[a], np.asarray(reference["pid"])[b]
    if not np.array_equal(vp, rp):
        bad = int(common[np.flatnonzero(vp != rp)[0]])
        raise ValueError(f"{where}query {bad} has identity {vp[vp != rp][0]} in one row and {rp[vp != rp][0]} in the "
                         "other: the rows were not evaluated on the same split")
    diff = np.asarray(variant[metric], dtype=float)[a] - np.asarray(reference[metric], dtype=float)[b]
    return diff, vp


def _replicates(diff: np.ndarray, pid: np.ndarray, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Mean per-query difference over identities drawn with replacement, ``shape`` replicates."""
    _, group = np.unique(pid, return_inverse=True)
    sums = np.bincount(group, weights=diff)
    counts = np.bincount(group).astype(float)
    n = sums.shape[0]
    draws = rng.integers(0, n, size=shape + (n,))
    return sums[draws].sum(-1) / counts[draws].sum(-1)


def _t_cdf_from_zero(x: float, df: int) -> float:
    """∫_0^x of Student's t density with ``df`` degrees of freedom (Simpson's rule on a fine grid)."""
    c = math.exp(math.lgamma((df + 1) / 2) - math.lgamma(df / 2)) / math.sqrt(df * math.pi)
    u = np.linspace(0.0, x, 20001)
    f = c * (1.0 + u * u / df) ** (-(df + 1) / 2)
    h = x / 20000
    return float(h / 3 * (f[0] + f[-1] + 4 * f[1:-1:2].sum() + 2 * f[2:-1:2].sum()))


def t_quantile(p: float, df: int) -> float:
    """The ``p`` quantile (p > 0.5) of Student's t with ``df`` degrees of freedom, by bisection (|error| < 1e-6;
    numpy only: scipy is not imported by ``lib``)."""
    if not 0.5 < p < 1.0 or df < 1:
        raise ValueError(f"t_quantile: expected 0.5 < p < 1 and df ≥ 1, found p={p!r}, df={df!r}")
    lo, hi = 0.0, 1.0
    while 0.5 + _t_cdf_from_zero(hi, df) < p:
        hi *= 2.0
    while hi - lo > 1e-7:
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if 0.5 + _t_cdf_from_zero(mid, df) < p else (lo, mid)
    return (lo + hi) / 2


def paired_interval(splits: Sequence[tuple[np.ndarray, np.ndarray]], *, B: int = DEFAULT_B, seed: int = 0,
                    level: float = LEVEL, between_splits: bool = True) -> Interval:
    """The effect and its interval from each split's ``(diff, pid)`` (:func:`split_differences`); see the module
    docstring for the method (``between_splits``).

    Raises:
        ValueError: no split, an empty split, ``B < 2`` or ``level`` outside (0, 1).
    """
    if not splits:
        raise ValueError("paired_interval: expected the per-query differences of at least one split, found none")
    if int(B) < 2:
        raise ValueError(f"B: expected at least 2 bootstrap replicates, found {B!r}")
    if not 0.0 < float(level) < 1.0:
        raise ValueError(f"level: expected a number in (0, 1), found {level!r}")
    parts = []
    for i, (diff, pid) in enumerate(splits):
        diff, pid = np.asarray(diff, dtype=float), np.asarray(pid)
        if diff.size == 0 or diff.shape != pid.shape:
            raise ValueError(f"split {i}: expected one difference and one identity per query, found "
                             f"{diff.size} differences and {pid.size} identities")
        parts.append((diff, pid))
    rng = np.random.default_rng(seed)
    k, B = len(parts), int(B)
    alpha = (1.0 - float(level)) / 2.0
    reps = np.stack([_replicates(d, p, rng, (B,)) for d, p in parts])  # (k, B): each split's bootstrap means
    d = np.array([x.mean() for x, _ in parts])
    effect = float(d.mean())
    n = int(sum(x.size for x, _ in parts))
    if k == 1 or not between_splits:
        low, high = np.quantile(reps.mean(axis=0), [alpha, 1.0 - alpha])
        how = "identity bootstrap" + ("" if k == 1 else f", pooled over {k} splits")
        return Interval(effect, float(low), float(high), k, n, B, float(level), how)
    var = max(float(d.var(ddof=1)), float(reps.var(axis=1, ddof=1).mean()))
    half = t_quantile(1.0 - alpha, k - 1) * np.sqrt(var / k)
    return Interval(effect, effect - half, effect + half, k, n, B, float(level), f"t over {k} splits")


def interval_columns(iv: Interval | None, scale: float = 100.0) -> dict[str, Any]:
    """The CSV columns of an effect: ``effect``, ``effect_low``, ``effect_high`` (scaled), ``effect_excludes_zero``,
    ``effect_method``."""
    if iv is None:
        return {"effect": None, "effect_low": None, "effect_high": None, "effect_excludes_zero": None,
                "effect_method": None}
    return {"effect": scale * iv.effect, "effect_low": scale * iv.low, "effect_high": scale * iv.high,
            "effect_excludes_zero": iv.excludes_zero, "effect_method": iv.method}
