#!/usr/bin/env python
"""Benchmark ``lib.metrics.evaluate_ranking`` on a Market-1501-sized random problem.

Times the evaluation (best of ``--repeats``), measures the peak extra resident
memory it needs, and checks that a 100k-item gallery is processed in bounded
memory (chunking). Prints a one-line summary and writes
``outputs/bench/metrics.json`` atomically.

Usage::

    python scripts/bench_metrics.py [--num-query 3368] [--num-gallery 15913] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lib.metrics import evaluate_ranking  # noqa: E402
from lib.metrics.ranking import _chunk_rows  # noqa: E402

MiB = 2**20


def make_problem(num_query: int, num_gallery: int, num_ids: int = 751, num_cams: int = 6, seed: int = 0):
    """Seeded random problem: float32 distmat and integer pid/cam labels (every id in the gallery)."""
    rng = np.random.default_rng(seed)
    g_pids = rng.permutation(np.resize(np.arange(num_ids), num_gallery)).astype(np.int64)
    q_pids = rng.integers(0, num_ids, num_query, dtype=np.int64)
    g_cams = rng.integers(0, num_cams, num_gallery, dtype=np.int64)
    q_cams = rng.integers(0, num_cams, num_query, dtype=np.int64)
    distmat = np.empty((num_query, num_gallery), dtype=np.float32)
    rng.random(dtype=np.float32, out=distmat)  # in place: no float64 temporary
    return distmat, q_pids, g_pids, q_cams, g_cams


def _rss_kib(field: str) -> int | None:
    """``VmRSS``/``VmHWM`` of this process in KiB (Linux), else None."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def peak_extra_mib(fn: Callable[[], Any]) -> dict[str, Any]:
    """Peak extra memory while running ``fn`` (MiB), measured two ways.

    * ``traced``: ``tracemalloc`` peak above the level before the call. numpy
      registers its buffers with tracemalloc, so this is the exact peak of the
      numpy working arrays (the engine's large temporaries); small torch
      tensors are not traced.
    * ``rss``: growth of the resident set's high-water mark (``VmHWM``, reset
      through ``/proc/self/clear_refs`` when allowed, else the ``ru_maxrss``
      delta). A lower bound only: pages freed by an earlier run and kept by
      the allocator are reused without growing the RSS.
    """
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        fn()
        traced = (tracemalloc.get_traced_memory()[1] - base) / MiB
    finally:
        tracemalloc.stop()
    before = _rss_kib("VmRSS")
    rss, method = None, "VmHWM-reset"
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        fn()
        hwm = _rss_kib("VmHWM")
        if before is not None and hwm is not None:
            rss = max(0.0, (hwm - before) / 1024)
    except OSError:
        pass
    if rss is None:
        peak0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        fn()
        rss, method = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak0) / 1024, "ru_maxrss-delta"
    return {"traced_mib": round(traced, 1), "rss_mib": round(rss, 1), "rss_method": method}


def time_best(fn: Callable[[], Any], repeats: int) -> tuple[float, list[float], Any]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), times, out


def write_json_atomic(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(payload, fh, indent=2)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--num-query", type=int, default=3368)
    ap.add_argument("--num-gallery", type=int, default=15913)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--num-ids", type=int, default=751)
    ap.add_argument("--num-cams", type=int, default=6)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--big-gallery", type=int, default=100_000, help="gallery size of the memory check (0: skip)")
    ap.add_argument("--big-queries", type=int, default=512, help="queries of the memory check")
    ap.add_argument("--out", type=Path, default=ROOT / "outputs" / "bench" / "metrics.json")
    args = ap.parse_args(argv)
    if min(args.num_query, args.num_gallery, args.repeats, args.num_ids, args.num_cams) < 1:
        ap.error("--num-query, --num-gallery, --repeats, --num-ids and --num-cams must be >= 1")

    # --- speed on the Market-sized problem
    problem = make_problem(args.num_query, args.num_gallery, args.num_ids, args.num_cams, args.seed)
    run = lambda: evaluate_ranking(*problem, max_rank=20)  # noqa: E731
    run()  # warm-up (thread pool, allocator)
    best, times, res = time_best(run, args.repeats)
    mem = peak_extra_mib(run)
    distmat_mib = problem[0].nbytes / MiB
    del problem

    # --- memory bound with a huge gallery: working memory must not scale with num_query x num_gallery
    big: dict[str, Any] = {}
    if args.big_gallery > 0:
        bp = make_problem(args.big_queries, args.big_gallery, args.num_ids, args.num_cams, args.seed + 1)
        big_mem = peak_extra_mib(lambda: evaluate_ranking(*bp, max_rank=20))
        workers = torch.get_num_threads()
        step = _chunk_rows(args.big_gallery, bp[0].itemsize, workers)
        per_query = (2 * bp[0].itemsize + 1) * args.big_gallery  # chunk copy + sorted copy + tie mask
        # what a single un-chunked pass would need (working arrays for every query at once)
        unchunked_mib = args.big_queries * per_query / MiB
        chunk_mib = min(step * workers, args.big_queries) * per_query / MiB
        big = {
            "num_query": args.big_queries,
            "num_gallery": args.big_gallery,
            "queries_per_chunk": step,
            "distmat_mib": round(bp[0].nbytes / MiB, 1),
            "peak_extra_mib": big_mem,
            "estimated_chunked_mib": round(chunk_mib, 1),
            "estimated_unchunked_mib": round(unchunked_mib, 1),
            # generous allowance: 2x the chunk estimate + 64 MiB for allocator/library overhead
            "bounded": bool(max(big_mem["traced_mib"], big_mem["rss_mib"]) <= 2 * chunk_mib + 64),
        }
        del bp

    payload = {
        "benchmark": "evaluate_ranking",
        "num_query": args.num_query,
        "num_gallery": args.num_gallery,
        "num_ids": args.num_ids,
        "num_cams": args.num_cams,
        "seed": args.seed,
        "repeats": args.repeats,
        "best_s": round(best, 4),
        "times_s": [round(t, 4) for t in times],
        "distmat_mib": round(distmat_mib, 1),
        "peak_extra_mib": mem,
        "queries_per_chunk": _chunk_rows(args.num_gallery, 4, torch.get_num_threads()),
        "rank1": float(res["cmc"][0]),
        "mAP": res["mAP"],
        "mINP": res["mINP"],
        "num_valid_queries": res["num_valid_queries"],
        "big_gallery_check": big,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    write_json_atomic(args.out, payload)
    line = (
        f"evaluate_ranking {args.num_query}x{args.num_gallery}: best {best:.3f}s of {args.repeats} "
        f"({', '.join(f'{t:.3f}' for t in times)}), peak extra {mem['traced_mib']:.0f} MiB traced "
        f"(distmat {distmat_mib:.0f} MiB), threads {torch.get_num_threads()}"
    )
    if big:
        line += (
            f" | {big['num_query']}x{big['num_gallery']}: peak extra {big['peak_extra_mib']['traced_mib']:.0f} MiB "
            f"vs {big['estimated_unchunked_mib']:.0f} MiB unchunked -> {'bounded' if big['bounded'] else 'NOT BOUNDED'}"
        )
    print(line)
    print(f"wrote {args.out}")
    return 0 if (not big or big["bounded"]) else 1


if __name__ == "__main__":
    sys.exit(main())
