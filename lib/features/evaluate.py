"""Score a feature file with this workbook's evaluator: the file's distance, the file's protocol, the tables' scoring.

The distance matrix is :func:`lib.metrics.distance_matrix` of the file's ``metric``; it is scored by
:func:`lib.engine.evaluate.score_distances` — what every run's test calls — so an exported run scores what the run
recorded, and another toolbox's features are scored exactly as the tables score ours.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .. import methods as _methods  # noqa: F401  (the methods register their own distances: FTWA's ``ftwa``)
from ..engine.evaluate import PER_QUERY, score_distances
from ..metrics import distance_matrix
from .format import DEFAULT_METRIC, DEFAULT_PROTOCOL, FeatureFile, FeatureFileError

__all__ = ["PROTOCOLS", "check_protocol", "evaluate_features", "summary_line"]

#: Protocol name → its parameters and their defaults.
PROTOCOLS: dict[str, dict[str, int]] = {"multi_shot": {}, "single_shot": {"num_repeats": 10, "seed": 0}}


def check_protocol(protocol: Mapping[str, Any], where: str = "protocol") -> dict[str, Any]:
    """``protocol`` with its defaults filled in (``{"name": "single_shot", "num_repeats": 10, "seed": 0}`` …).

    Raises:
        FeatureFileError: an unknown name, an unknown parameter, a parameter that is not an integer in range.
    """
    name = protocol.get("name") if isinstance(protocol, Mapping) else None
    if name not in PROTOCOLS:
        raise FeatureFileError(f"{where}: expected the name {' or '.join(map(repr, PROTOCOLS))}, found {protocol!r}")
    params = {k: v for k, v in protocol.items() if k != "name"}
    unknown = sorted(set(params) - set(PROTOCOLS[name]))
    if unknown:
        raise FeatureFileError(f"{where}: protocol {name!r} has no parameter {', '.join(map(repr, unknown))} "
                               f"(it takes: {', '.join(PROTOCOLS[name]) or 'none'})")
    out: dict[str, Any] = {"name": name} | PROTOCOLS[name] | params
    for k in PROTOCOLS[name]:
        v = out[k]
        if not isinstance(v, int) or isinstance(v, bool) or (k == "num_repeats" and v < 1):
            raise FeatureFileError(f"{where}: {k}: expected {'a positive' if k == 'num_repeats' else 'an'} integer, "
                                   f"found {v!r}")
    return out


def evaluate_features(ff: FeatureFile, *, metric: Mapping[str, Any] | None = None,
                      protocol: Mapping[str, Any] | None = None, where: str = "features") -> dict[str, Any]:
    """Rank-1/5/10/20 (those the gallery allows), mAP, mINP, CMC of a feature file.

    Args:
        ff: the file's contents (:meth:`FeatureFile.load`).
        metric, protocol: replace the file's own (its ``metric`` / ``protocol``; absent there:
            ``{"distance": "cosine"}`` and ``{"name": "multi_shot"}``).
        where: the file's name, for error messages.

    Returns:
        :func:`~lib.engine.evaluate.score_distances`' metrics (fractions) without the per-query records, with the
        ``metric`` and ``protocol`` used.

    Raises:
        FeatureFileError: a bad metric or protocol, or features no query of which has a true match.
    """
    metric = dict(metric if metric is not None else ff.metric if ff.metric is not None else DEFAULT_METRIC)
    proto = check_protocol(protocol if protocol is not None else ff.protocol or DEFAULT_PROTOCOL, f"{where}: protocol")
    try:
        dist = distance_matrix(ff.qf, ff.gf, metric)
        r = score_distances(dist, ff.q_pids, ff.g_pids, ff.q_camids, ff.g_camids, protocol=proto["name"],
                            num_repeats=proto.get("num_repeats", 1), seed=proto.get("seed", 0))
    except ValueError as e:
        raise FeatureFileError(f"{where}: {e}") from None
    r.pop(PER_QUERY, None)
    return r | {"metric": metric, "protocol": proto}


def summary_line(metrics: Mapping[str, Any]) -> str:
    """``Rank-1 41.7 %  Rank-5 …  mAP 38.2 %`` of a metrics dict (fractions; the ranks it has)."""
    parts = [f"Rank-{k} {100 * metrics[f'rank{k}']:.1f} %" for k in (1, 5, 10) if f"rank{k}" in metrics]
    return "  ".join(parts + [f"mAP {100 * metrics['mAP']:.1f} %"])
