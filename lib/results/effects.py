"""Effects between two rows of a table, with their intervals, from the finished runs the summaries name.

A summary's per-split metrics name the run and output they came from (``source``: the run folder relative to the
profile's folder, and the output's key in the run's ``per_query.json``). :func:`row_interval` pairs the two rows
split by split and hands the per-query differences to :func:`lib.metrics.intervals.paired_interval`. Nothing is
trained or evaluated here: a run without per-query records (finished before they were kept) has no interval until
its table is run again, which re-evaluates it (``lib.core.runs``).

The effect of any finished row against any other, from the command line: :mod:`lib.results.compare`.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..core.runs import PER_QUERY_FILE
from ..metrics.intervals import DEFAULT_B, Interval, paired_interval, split_differences

__all__ = ["row_interval", "per_query_records", "MissingPerQuery"]


class MissingPerQuery(LookupError):
    """A row's split has no per-query records (an older run, or a summary written before they were kept)."""


@lru_cache(maxsize=512)
def _load(path: str, mtime_ns: int) -> dict:
    try:
        rec = json.loads(Path(path).read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON ({e}); run the table again to re-evaluate the run") from None
    if not isinstance(rec, dict) or not isinstance(rec.get("outputs"), dict):
        raise ValueError(f"{path}: expected {{'outputs': {{output: per-query record}}}}, found {type(rec).__name__}")
    return rec


def per_query_records(out_dir: str | os.PathLike, summary: dict, output: str) -> dict[int, dict]:
    """``{split: per-query record}`` of ``output`` in one summary (see the module docstring).

    Raises:
        MissingPerQuery: a split names no source, its run has no ``per_query.json`` / no record of the output, or
            the run was evaluated again with other test settings since the summary was written.
        ValueError: a source that is not a folder inside ``out_dir`` (a summary from elsewhere), unreadable records.
    """
    where = summary.get("_path", "summary")
    splits = summary.get("splits", [])
    per = summary.get("outputs", {}).get(output, {}).get("per_split", [])
    root = Path(out_dir).resolve()
    out: dict[int, dict] = {}
    for i, m in enumerate(per):
        src = m.get("source") if isinstance(m, dict) else None
        k = src.get("split") if isinstance(src, dict) and "split" in src else (splits[i] if i < len(splits) else i)
        if not src:
            raise MissingPerQuery(f"{where}: split {k} of {output!r} names no run (a summary written before "
                                  "per-query records were kept: run its table again)")
        if not isinstance(src, dict) or not isinstance(src.get("run"), str) or not src["run"] \
                or not isinstance(src.get("output"), str):
            raise ValueError(f"{where}: split {k} of {output!r}: expected source {{run: folder, output: name}}, "
                             f"found {src!r}")
        run = (root / src["run"]).resolve()
        if Path(src["run"]).is_absolute() or not run.is_relative_to(root):
            raise ValueError(f"{where}: split {k} of {output!r}: run {src['run']!r} is not a folder inside the "
                             f"profile's output folder {root}")
        p = run / PER_QUERY_FILE
        if not p.is_file():
            raise MissingPerQuery(f"{p} does not exist (run {run.name} finished before per-query records were kept: "
                                  "run its table again to re-evaluate it)")
        rec = _load(str(p), p.stat().st_mtime_ns)
        if "eval" in src and rec.get("eval") != src["eval"]:
            raise MissingPerQuery(f"{p}: the run was evaluated again with other test settings ({rec.get('eval')}) "
                                  f"since {where} was written ({src['eval']}): run its table again")
        pq = rec["outputs"].get(src["output"])
        if pq is None:
            raise MissingPerQuery(f"{p} has no record of output {src['output']!r}")
        out[int(k)] = pq
    return out


def row_interval(out_dir: str | os.PathLike, summary: dict, output: str, ref_summary: dict, ref_output: str, *,
                 metric: str = "rank1", B: int = DEFAULT_B, seed: int = 0, between_splits: bool = True
                 ) -> tuple[Interval | None, str]:
    """``(interval, why)``: the effect ``summary/output − ref_summary/ref_output`` on the splits both have, or
    ``(None, reason)`` when it cannot be computed (other data, no common split, no or unusable per-query records):
    one bad pair of rows never costs a table its other effects."""
    a_sha, b_sha = summary.get("manifest_sha256"), ref_summary.get("manifest_sha256")
    if a_sha != b_sha:
        return None, (f"the rows were measured on different builds of the dataset (manifest sha256 {str(a_sha)[:12]} "
                      f"vs {str(b_sha)[:12]}): run both again on the same build")
    try:
        a = per_query_records(out_dir, summary, output)
        b = per_query_records(out_dir, ref_summary, ref_output)
        common = sorted(set(a) & set(b))
        if not common:
            return None, f"no common split (row: splits {sorted(a)}, reference: {sorted(b)})"
        diffs = [split_differences(a[k], b[k], metric, where=f"split {k}: ") for k in common]
        return paired_interval(diffs, B=B, seed=seed, between_splits=between_splits), ""
    except (MissingPerQuery, ValueError, TypeError, KeyError) as e:
        return None, str(e)


def describe(iv: Interval) -> dict[str, Any]:
    """A JSON-able description of an interval (what the tables' CSV keeps beside the bounds)."""
    return {"effect": iv.effect, "low": iv.low, "high": iv.high, "splits": iv.num_splits, "queries": iv.num_queries,
            "replicates": iv.replicates, "level": iv.level, "excludes_zero": iv.excludes_zero}

