"""Aggregation of per-split results (mean ± std over identity splits)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["aggregate_splits", "format_mean_std"]


def _summary(values: Sequence[float], ddof: int) -> dict[str, Any]:
    """``{"mean", "std", "values"}`` of a list of floats (std with ``ddof``; 0 for one value)."""
    arr = np.asarray(values, dtype=np.float64)
    std = float(arr.std(ddof=ddof)) if arr.size > ddof else 0.0
    return {"mean": float(arr.mean()), "std": std, "values": [float(v) for v in arr]}


def aggregate_splits(
    results: Sequence[Mapping[str, Any]], ranks: Sequence[int] = (1, 5, 10, 20), *, ddof: int = 0,
    extra: tuple[str, ...] = ("psnr", "ssim", "match_"),
) -> dict[str, Any]:
    """Mean ± std of Rank-k, mAP and mINP over identity splits.

    Args:
        results: one ``evaluate_ranking`` / ``evaluate_single_shot`` dict per split
            (needs ``cmc`` and ``mAP``; ``mINP`` is aggregated when every split has it).
        ranks: 1-based ranks to report; Rank-k is read from ``cmc[k - 1]``.
        ddof: delta degrees of freedom of the std (0: population std, the
            ``np.std`` default; 1: sample std).
        extra: prefixes of further scalar metrics aggregated the same way when every split has them
            (``psnr``, ``psnr_r2``, ``ssim`` …: restoration quality, in their own units; ``match_<m>_rank1`` …: FTWA's
            alternative test-time matchings).

    Returns:
        ``{"rank1": {"mean", "std", "values"}, ..., "mAP": {...}, "mINP": {...},
        "num_splits": n}`` with fractions in [0, 1].

    Raises:
        ValueError: when ``results`` is empty, a rank is < 1 or beyond a split's CMC length,
            or a split lacks ``cmc``/``mAP``.
    """
    if len(results) == 0:
        raise ValueError("results: expected at least one split result, found an empty list")
    for i, r in enumerate(results):
        missing = [k for k in ("cmc", "mAP") if k not in r]
        if missing:
            raise ValueError(f"results[{i}]: missing key(s) {missing}")
    out: dict[str, Any] = {}
    for k in ranks:
        k = int(k)
        if k < 1:
            raise ValueError(f"ranks: expected 1-based ranks >= 1, found {k}")
        values = []
        for i, r in enumerate(results):
            cmc = np.asarray(r["cmc"])
            if k > cmc.shape[0]:
                raise ValueError(f"ranks: rank {k} exceeds results[{i}]['cmc'] length {cmc.shape[0]}")
            values.append(cmc[k - 1])
        out[f"rank{k}"] = _summary(values, ddof)
    out["mAP"] = _summary([r["mAP"] for r in results], ddof)
    if all("mINP" in r for r in results):
        out["mINP"] = _summary([r["mINP"] for r in results], ddof)
    for key in results[0]:  # restoration quality (PSNR in dB, SSIM ratio) where every split measured it
        if key.startswith(extra) and all(isinstance(r.get(key), (int, float)) for r in results):
            out[key] = _summary([r[key] for r in results], ddof)
    out["num_splits"] = len(results)
    return out


def format_mean_std(d: Mapping[str, Any], percent: bool = True, digits: int = 1) -> str:
    """Format ``{"mean": m, "std": s}`` as ``"48.7 ± 1.2"`` (×100 when ``percent``)."""
    scale = 100.0 if percent else 1.0
    return f"{d['mean'] * scale:.{digits}f} ± {d['std'] * scale:.{digits}f}"
