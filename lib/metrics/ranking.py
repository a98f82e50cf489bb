"""Vectorised multi-shot ranking evaluation (CMC, mAP, mINP).

Protocol (identical to torchreid / fast-reid ``eval_market1501``):

* Distances: smaller means more similar.
* For each query, gallery items with the same pid **and** the same camid are
  *junk*: they are removed from that query's ranking (they neither count as a
  match nor occupy a rank).
* True matches are the remaining gallery items with the query's pid.
* ``cmc[k]`` is the fraction of valid queries whose first true match is at
  (junk-removed, 1-based) rank ``<= k + 1``.
* AP is non-interpolated: the mean over the query's true matches of the
  precision at each match's rank.
* INP is ``num_matches / rank_of_the_last_match`` (Ye et al., AGW baseline).
* Queries without any true match are skipped and counted.
* **Ties** are broken deterministically by gallery index: among equal
  distances the item with the smaller gallery index ranks first, exactly as a
  stable sort of each distance row would order them.

Implementation (exact, no argsort of the gallery): only the ranks of each
query's true matches are needed, and the junk-removed rank of a match ``p`` is

    1 + #{gallery items before p} - #{junk items before p}

in the (distance, gallery index) order. The first count comes from a
value-only ``np.sort`` of each distance row (SIMD quicksort, much faster than a
stable argsort) and a batched ``searchsorted`` of the match distances, plus an
explicit count of equal distances with a smaller index in the rare tied case.
The junk count only involves the query's own identity, so it comes from a
small per-query (distance, index) ordering of that identity's gallery items.
Queries are processed in chunks (bounded working memory, about
``_CHUNK_BYTES`` in total whatever the gallery size), on a few threads since
``np.sort`` releases the GIL.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

import numpy as np
import torch

__all__ = ["evaluate_ranking", "validate_inputs", "rank_query"]

#: Target size of all the per-chunk working arrays together (bytes).
_CHUNK_BYTES = 64 * 2**20


# --------------------------------------------------------------------------- inputs
def _to_numpy(x: Any) -> np.ndarray:
    """numpy view of a tensor (moved to CPU) or array-like."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
        if x.dtype in (torch.float16, torch.bfloat16):
            x = x.float()
        return x.numpy()
    return np.asarray(x)


def _as_distmat(distmat: Any) -> np.ndarray:
    """2-D float32/float64 numpy distance matrix (no copy when already so)."""
    d = _to_numpy(distmat)
    if d.ndim != 2:
        raise ValueError(f"distmat: expected a 2-D array (num_query, num_gallery), found shape {d.shape}")
    if d.dtype == np.float16:
        d = d.astype(np.float32)
    elif d.dtype not in (np.float32, np.float64):
        if not (np.issubdtype(d.dtype, np.integer) or np.issubdtype(d.dtype, np.floating) or d.dtype == bool):
            raise ValueError(f"distmat: expected real-valued distances, found dtype {d.dtype}")
        d = d.astype(np.float64)
    return d


def _as_labels(x: Any, name: str, length: int, length_name: str) -> np.ndarray:
    """1-D int64 label array of the given length; ValueError naming ``name`` otherwise."""
    a = _to_numpy(x)
    if a.ndim != 1 or a.shape[0] != length:
        raise ValueError(f"{name}: expected shape ({length},) to match {length_name}, found shape {a.shape}")
    if np.issubdtype(a.dtype, np.unsignedinteger) and a.size and int(a.max()) > np.iinfo(np.int64).max:
        raise ValueError(f"{name}: labels up to {int(a.max())} exceed the int64 range; renumber the identities")
    if np.issubdtype(a.dtype, np.integer):
        return a.astype(np.int64, copy=False)
    if np.issubdtype(a.dtype, np.floating) and np.all(np.isfinite(a)) and np.all(a == np.round(a)):
        if a.size and float(np.abs(a).max()) > 2.0**53:  # beyond it, distinct labels can be equal floats
            raise ValueError(f"{name}: float labels up to {float(np.abs(a).max()):g} are not exact integers; pass integers")
        return a.astype(np.int64)
    raise ValueError(f"{name}: expected integer labels, found dtype {a.dtype}")


def validate_inputs(
    distmat: Any, q_pids: Any, g_pids: Any, q_camids: Any, g_camids: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Convert (numpy arrays or torch tensors) and check the inputs of :func:`evaluate_ranking`.

    Returns:
        ``(distmat, q_pids, g_pids, q_camids, g_camids)``: float32/float64
        (num_query, num_gallery) array and int64 label arrays.

    Raises:
        ValueError: naming the offending argument with expected and found shapes.
    """
    d = _as_distmat(distmat)
    nq, ng = d.shape
    if nq == 0 or ng == 0:
        raise ValueError(f"distmat: expected a non-empty (num_query, num_gallery) array, found shape {d.shape}")
    return (
        d,
        _as_labels(q_pids, "q_pids", nq, "distmat.shape[0]"),
        _as_labels(g_pids, "g_pids", ng, "distmat.shape[1]"),
        _as_labels(q_camids, "q_camids", nq, "distmat.shape[0]"),
        _as_labels(g_camids, "g_camids", ng, "distmat.shape[1]"),
    )


# --------------------------------------------------------------------------- identity groups
class _Groups(NamedTuple):
    """Gallery indices grouped by pid, and each query's group."""

    order: np.ndarray  # (G,) gallery indices sorted by pid, ascending index inside a pid
    q_start: np.ndarray  # (Q,) start of the query's pid group in ``order``
    q_count: np.ndarray  # (Q,) size of that group (0: pid absent from the gallery)


def _group_by_pid(q_pids: np.ndarray, g_pids: np.ndarray) -> _Groups:
    order = np.argsort(g_pids, kind="stable")
    uniq, start, count = np.unique(g_pids[order], return_index=True, return_counts=True)
    pos = np.minimum(np.searchsorted(uniq, q_pids), uniq.shape[0] - 1)
    found = uniq[pos] == q_pids
    return _Groups(order, start[pos], np.where(found, count[pos], 0))


# --------------------------------------------------------------------------- core
def _same_pid_items(
    dc: np.ndarray, q_cams: np.ndarray, g_cams: np.ndarray, order: np.ndarray, q_start: np.ndarray, q_count: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """True matches of each query, sorted by (distance, gallery index), and the junk ahead of each.

    Returns:
        ``(t, t_idx, junk_before, n_pos)``: (B, P) match distances, gallery
        indices and number of junk items preceding each match; (B,) number of
        matches. Columns ``>= n_pos[i]`` are padding.
    """
    g = dc.shape[1]
    s = max(int(q_count.max()), 1)
    col = np.arange(s)
    in_group = col[None, :] < q_count[:, None]
    cand = order[np.minimum(q_start[:, None] + col[None, :], g - 1)]
    cd = np.take_along_axis(dc, cand, axis=1)
    junk = in_group & (g_cams[cand] == q_cams[:, None])
    pos = in_group & ~junk
    # (distance, index) order inside the group; entries outside the group go last
    perm = np.lexsort((cand, cd, ~in_group), axis=-1)
    cand, cd, junk, pos = (np.take_along_axis(a, perm, axis=1) for a in (cand, cd, junk, pos))
    junk_before = np.cumsum(junk, axis=1) - junk
    n_pos = pos.sum(axis=1)
    p = max(int(n_pos.max()), 1)
    first = np.argsort(~pos, axis=1, kind="stable")[:, :p]  # matches first, order kept
    t, t_idx, jb = (np.take_along_axis(a, first, axis=1) for a in (cd, cand, junk_before))
    return t, t_idx, jb, n_pos


def _count_ties(
    dc: np.ndarray, t: np.ndarray, t_idx: np.ndarray, rows: np.ndarray, ks: np.ndarray, batch: int
) -> np.ndarray:
    """For each (row, k): gallery items with distance equal to ``t[row, k]`` and a smaller index."""
    g = dc.shape[1]
    arange = np.arange(g)
    out = np.empty(rows.shape[0], dtype=np.int64)
    for s in range(0, rows.shape[0], batch):
        r, k = rows[s : s + batch], ks[s : s + batch]
        eq = dc[r] == t[r, k][:, None]
        eq &= arange[None, :] < t_idx[r, k][:, None]
        out[s : s + batch] = eq.sum(axis=1)
    return out


def _chunk_ranks(
    dc: np.ndarray, q_cams: np.ndarray, g_cams: np.ndarray, groups: _Groups, sl: slice
) -> tuple[np.ndarray, np.ndarray]:
    """Junk-removed 1-based ranks of every true match for the queries ``sl``.

    Returns:
        ``(ranks, n_pos)``: (B, P) int64 ranks, ascending per row (columns
        ``>= n_pos[i]`` are padding), and (B,) number of true matches.
    """
    srt = np.sort(dc, axis=1)  # values only; NaN would be sorted last
    if np.isnan(srt[:, -1]).any():
        bad = sl.start + int(np.flatnonzero(np.isnan(srt[:, -1]))[0])
        raise ValueError(f"distmat: contains NaN (query row {bad})")
    ends = srt[:, [0, -1]]
    if np.isinf(ends).any():  # an infinite distance ties with every other one: the ranking would be arbitrary
        bad = sl.start + int(np.flatnonzero(np.isinf(ends).any(axis=1))[0])
        raise ValueError(f"distmat: contains an infinite distance (query row {bad}); check the features for overflow")
    t, t_idx, jb, n_pos = _same_pid_items(dc, q_cams, g_cams, groups.order, groups.q_start[sl], groups.q_count[sl])
    valid_k = np.arange(t.shape[1])[None, :] < n_pos[:, None]
    t = np.ascontiguousarray(np.where(valid_k, t, srt[:, :1]))  # padding: any non-NaN value
    srt_t, t_t = torch.from_numpy(srt), torch.from_numpy(t)
    before = torch.searchsorted(srt_t, t_t).numpy()  # items with a strictly smaller distance
    equal = torch.searchsorted(srt_t, t_t, right=True).numpy() - before  # >= 1: the match itself
    rows, ks = np.nonzero(valid_k & (equal > 1))
    if rows.size:  # exact ties: the tied items of smaller gallery index come first
        batch = max(1, dc.shape[0] // (dc.itemsize + 2))  # row copies + mask within ~1 byte per element
        before[rows, ks] += _count_ties(dc, t, t_idx, rows, ks, batch)
    return before - jb + 1, n_pos


def _chunk_metrics(ranks: np.ndarray, n_pos: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """First-match rank, AP and INP (float64) of the queries with at least one match, and which queries those are."""
    valid = n_pos > 0
    ranks, n = ranks[valid].astype(np.float64), n_pos[valid]
    k = np.arange(1, ranks.shape[1] + 1, dtype=np.float64)[None, :]
    keep = k <= n[:, None]
    precision = np.divide(k, ranks, out=np.zeros_like(ranks), where=keep)  # padding ignored
    ap = precision.sum(axis=1) / n
    inp = n / ranks[np.arange(n.shape[0]), n - 1]
    return ranks[:, 0], ap, inp, np.flatnonzero(valid)


def _chunk_rows(
    num_gallery: int, itemsize: int, workers: int, max_group: int = 0, chunk_bytes: int = _CHUNK_BYTES
) -> int:
    """Queries per chunk so that all workers' arrays stay near ``chunk_bytes`` together.

    Per query: chunk copy + sorted copy + tie mask ≈ (2 itemsize + 1) bytes per
    gallery item, plus ~64 bytes per item of the query's identity group
    (``max_group``, the largest one) for the small same-pid arrays.
    """
    per_query = (2 * itemsize + 1) * max(1, num_gallery) + 64 * max_group
    return max(1, chunk_bytes // (per_query * max(1, workers)))


def evaluate_ranking(
    distmat: Any,
    q_pids: Any,
    g_pids: Any,
    q_camids: Any,
    g_camids: Any,
    max_rank: int = 20,
    *,
    chunk_size: int | None = None,
    num_threads: int | None = None,
) -> dict[str, Any]:
    """Multi-shot re-ID evaluation (Market-1501 protocol): CMC, mAP and mINP.

    Args:
        distmat: (num_query, num_gallery) distances, numpy array or torch tensor;
            smaller is more similar. float16/bfloat16 are widened to float32,
            integers to float64. Must not contain NaN.
        q_pids, g_pids: identity labels of queries / gallery items (1-D, integer).
        q_camids, g_camids: camera labels of queries / gallery items (1-D, integer).
        max_rank: length of the returned CMC curve. It may exceed the gallery
            size (the curve then saturates).
        chunk_size: queries processed at once; default keeps all working arrays
            near 64 MB together whatever the gallery size.
        num_threads: threads working on chunks in parallel (default
            ``torch.get_num_threads()``).

    Returns:
        dict with ``cmc`` (float64 array of length ``max_rank``; ``cmc[k]`` is
        the fraction of valid queries whose first true match is at rank
        ``<= k + 1``), ``mAP`` and ``mINP`` (floats in [0, 1]),
        ``num_valid_queries`` and ``num_skipped_queries`` (queries with no
        true match once junk is removed); per valid query, in the order of
        ``distmat``'s rows: ``query_index`` (its row), ``first_rank`` (1-based
        rank of its first true match) and ``ap`` — what a bootstrap over
        queries (:mod:`lib.metrics.intervals`) resamples.

    Ties in distance are broken by gallery index (lower index ranks first), as
    a stable sort of each row would.

    Raises:
        ValueError: on inconsistent shapes, NaN distances, ``max_rank < 1``, or
            when no query has a valid match.
    """
    if int(max_rank) < 1:
        raise ValueError(f"max_rank: expected a positive integer, found {max_rank}")
    max_rank = int(max_rank)
    d, qp, gp, qc, gc = validate_inputs(distmat, q_pids, g_pids, q_camids, g_camids)
    nq, ng = d.shape
    workers = max(1, int(num_threads) if num_threads else torch.get_num_threads())
    groups = _group_by_pid(qp, gp)
    step = int(chunk_size) if chunk_size else _chunk_rows(ng, d.itemsize, workers, int(groups.q_count.max()))
    if step < 1:
        raise ValueError(f"chunk_size: expected a positive integer, found {chunk_size}")

    def run(start: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        sl = slice(start, min(start + step, nq))
        ranks, n_pos = _chunk_ranks(np.ascontiguousarray(d[sl]), qc[sl], gc, groups, sl)
        first, ap, inp, valid = _chunk_metrics(ranks, n_pos)
        return first, ap, inp, valid + start

    starts = range(0, nq, step)
    if workers > 1 and len(starts) > 1:
        with ThreadPoolExecutor(max_workers=min(workers, len(starts))) as pool:
            parts = list(pool.map(run, starts))
    else:
        parts = [run(s) for s in starts]

    first = np.concatenate([p[0] for p in parts])
    num_valid = int(first.shape[0])
    if num_valid == 0:
        raise ValueError(
            "evaluate_ranking: no query has a valid match in the gallery "
            "(every query's identity is absent or appears only under the query's own camera)"
        )
    counts = np.bincount(np.minimum(first, max_rank + 1).astype(np.int64) - 1, minlength=max_rank + 1)
    ap = np.concatenate([p[1] for p in parts])
    return {
        "cmc": np.cumsum(counts[:max_rank]).astype(np.float64) / num_valid,
        "mAP": float(ap.mean()),
        "mINP": float(np.concatenate([p[2] for p in parts]).mean()),
        "num_valid_queries": num_valid,
        "num_skipped_queries": nq - num_valid,
        # per valid query (the means above are over these): its row in distmat, first-match rank (1 = a hit), AP
        "query_index": np.concatenate([p[3] for p in parts]).astype(np.int64),
        "first_rank": first.astype(np.int64),
        "ap": ap,
    }


def rank_query(dist_row: Any, q_pid: int, q_camid: int, g_pids: Any, g_camids: Any) -> dict[str, Any]:
    """One query's ranked gallery under the multi-shot protocol of :func:`evaluate_ranking` (junk — the query's
    identity under its own camera — removed; ties broken by gallery index).

    Returns ``order`` (gallery indices, best first, junk removed), ``matches`` (bool per entry of ``order``),
    ``first_match`` (1-based rank of the first true match, ``None`` when the gallery has none) and ``ap``
    (average precision; 0 without a true match) — what :func:`evaluate_ranking` averages into the CMC and mAP.
    """
    d = np.asarray(dist_row, dtype=np.float64).reshape(-1)
    gp, gc = np.asarray(g_pids).reshape(-1), np.asarray(g_camids).reshape(-1)
    if not (d.shape == gp.shape == gc.shape):
        raise ValueError(f"rank_query: dist_row {d.shape}, g_pids {gp.shape} and g_camids {gc.shape} differ in length")
    if np.isnan(d).any():
        raise ValueError("rank_query: dist_row contains NaN")
    order = np.argsort(d, kind="stable")
    keep = ~((gp[order] == q_pid) & (gc[order] == q_camid))
    order = order[keep]
    matches = gp[order] == q_pid
    hits = np.flatnonzero(matches)
    if hits.size == 0:
        return {"order": order, "matches": matches, "first_match": None, "ap": 0.0}
    ap = float(np.mean((np.arange(hits.size) + 1) / (hits + 1)))
    return {"order": order, "matches": matches, "first_match": int(hits[0]) + 1, "ap": ap}
