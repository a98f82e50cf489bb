"""Single-shot evaluation protocol (VIPeR, CUHK03 single-shot, CAVIAR).

For every repeat a seeded random draw keeps exactly one gallery image per
gallery identity; :func:`~lib.metrics.ranking.evaluate_ranking` is run on that
sub-gallery and the results are averaged over repeats.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .ranking import evaluate_ranking, validate_inputs

__all__ = ["evaluate_single_shot", "sample_single_shot_gallery"]


def sample_single_shot_gallery(g_pids: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Draw one gallery index per identity, uniformly among that identity's images.

    Args:
        g_pids: (num_gallery,) identity labels.
        rng: random generator (consumed: one ``rng.random(num_gallery)`` call).

    Returns:
        Sorted (ascending) int64 gallery indices, one per distinct pid, so the
        sub-gallery keeps the original relative order (relevant for ties).
    """
    g_pids = np.asarray(g_pids)
    keys = rng.random(g_pids.shape[0])
    order = np.lexsort((keys, g_pids))  # grouped by pid, random order inside a group
    sorted_pids = g_pids[order]
    first = np.ones(order.shape[0], dtype=bool)
    first[1:] = sorted_pids[1:] != sorted_pids[:-1]
    return np.sort(order[first]).astype(np.int64)


def evaluate_single_shot(
    distmat: Any,
    q_pids: Any,
    g_pids: Any,
    q_camids: Any,
    g_camids: Any,
    num_repeats: int = 10,
    seed: int = 0,
    max_rank: int = 20,
) -> dict[str, Any]:
    """Single-shot CMC / mAP / mINP averaged over random one-image-per-identity galleries.

    Args:
        distmat: (num_query, num_gallery) distances (numpy or torch), smaller = closer.
        q_pids, g_pids, q_camids, g_camids: 1-D integer labels.
        num_repeats: number of random gallery draws.
        seed: seed of ``np.random.default_rng`` (same seed -> same draws -> same result).
        max_rank: CMC length.

    Returns:
        dict with ``cmc`` (mean over repeats), ``cmc_std`` (population std over
        repeats), ``mAP``/``mINP`` (means) and ``mAP_std``/``mINP_std``,
        ``num_repeats``, ``num_valid_queries`` (mean over repeats; a query can
        become invalid in a draw that keeps only a same-camera image of its
        identity) and ``num_valid_queries_per_repeat``; per query with a match
        in at least one draw: ``query_index`` (its row in ``distmat``),
        ``query_rank1`` (the fraction of those draws with a Rank-1 hit) and
        ``query_ap`` (its mean AP over them).

    Raises:
        ValueError: on invalid inputs (see ``evaluate_ranking``), ``num_repeats < 1``,
            or when a draw leaves no valid query.
    """
    if int(num_repeats) < 1:
        raise ValueError(f"num_repeats: expected a positive integer, found {num_repeats}")
    d, qp, gp, qc, gc = validate_inputs(distmat, q_pids, g_pids, q_camids, g_camids)
    rng = np.random.default_rng(seed)

    runs = []
    for repeat in range(int(num_repeats)):
        keep = sample_single_shot_gallery(gp, rng)
        try:
            runs.append(evaluate_ranking(d[:, keep], qp, gp[keep], qc, gc[keep], max_rank=max_rank))
        except ValueError as err:
            raise ValueError(f"single-shot repeat {repeat}: {err}") from err

    # per query, over the repeats in which it has a true match: the fraction of them with a Rank-1 hit, and mean AP
    hits = np.zeros(qp.shape[0])
    aps = np.zeros(qp.shape[0])
    seen = np.zeros(qp.shape[0], dtype=np.int64)
    for r in runs:
        hits[r["query_index"]] += r["first_rank"] == 1
        aps[r["query_index"]] += r["ap"]
        seen[r["query_index"]] += 1
    ok = np.flatnonzero(seen)
    cmcs = np.stack([r["cmc"] for r in runs])
    maps = np.array([r["mAP"] for r in runs])
    minps = np.array([r["mINP"] for r in runs])
    valid = [int(r["num_valid_queries"]) for r in runs]
    return {
        "cmc": cmcs.mean(axis=0),
        "cmc_std": cmcs.std(axis=0),
        "mAP": float(maps.mean()),
        "mAP_std": float(maps.std()),
        "mINP": float(minps.mean()),
        "mINP_std": float(minps.std()),
        "num_repeats": int(num_repeats),
        "num_valid_queries": float(np.mean(valid)),
        "num_valid_queries_per_repeat": valid,
        "query_index": ok,
        "query_rank1": hits[ok] / seen[ok],
        "query_ap": aps[ok] / seen[ok],
    }
