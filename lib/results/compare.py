"""The effect of one finished row against any other, with its interval, from the command line.

A table's effects are against its one reference row (``reference:`` in its spec); the papers' ablations also read
step by step (FTWA Table 2: FTWA_B − Baseline, FTWA_R − FTWA_B, …). This pairs any two finished summaries of one
method and dataset (:func:`lib.results.effects.row_interval`; nothing trains or is evaluated)::

    python -m lib.results.compare outputs/cpu ftwa viper ftwa_r ftwa_b     # FTWA_R − FTWA_B on MLR-VIPeR
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..metrics.intervals import DEFAULT_B
from .effects import row_interval
from .summaries import summary_path

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """``python -m lib.results.compare OUT_DIR METHOD DATASET VARIANT REFERENCE``: prints the effect of
    ``VARIANT`` against ``REFERENCE`` (both finished summaries under ``OUT_DIR/results/METHOD/DATASET/``), with
    its 95 % interval, over the splits both have. Exit status 2 with a message naming what is missing."""
    ap = argparse.ArgumentParser(prog="python -m lib.results.compare", description=main.__doc__.split(":", 1)[1])
    ap.add_argument("out_dir", help="the profile's output folder (outputs/<profile>)")
    ap.add_argument("method", help="the method's name (pshrnet, ftwa)")
    ap.add_argument("dataset", help="the dataset's name (viper, caviar …)")
    ap.add_argument("variant", help="the row whose effect is measured (a variant's name)")
    ap.add_argument("reference", help="the row it is measured against")
    ap.add_argument("--output", default=None, help="the summaries' output (default: the method's name)")
    ap.add_argument("--reference-output", default=None, help="the reference's output (default: --output)")
    ap.add_argument("--metric", default="rank1", choices=("rank1", "ap"),
                    help="the per-query metric: rank1 (Rank-1) or ap (its mean is mAP); default rank1")
    ap.add_argument("-B", type=int, default=DEFAULT_B, help=f"bootstrap replicates (default {DEFAULT_B})")
    a = ap.parse_args(argv)
    results = Path(a.out_dir) / "results"
    if not results.is_dir():  # a misspelt profile folder reads like a missing summary otherwise
        print(f"error: {a.out_dir} holds no results/ folder (expected a profile's output folder, e.g. outputs/cpu, "
              "after a table ran)", file=sys.stderr)
        return 2
    if not (results / a.method).is_dir():
        have = sorted(p.name for p in results.iterdir() if p.is_dir())
        print(f"error: {results} has no summaries of method {a.method!r} (methods with summaries: "
              f"{', '.join(have) or 'none'})", file=sys.stderr)
        return 2
    recs = []
    for v, out in ((a.variant, a.output or a.method), (a.reference, a.reference_output or a.output or a.method)):
        try:
            path = summary_path(a.out_dir, a.method, a.dataset, v)
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        if not path.is_file():
            there = sorted(p.stem for p in (results / a.method / a.dataset).glob("*.json"))
            datasets = sorted(p.name for p in (results / a.method).glob("*") if p.is_dir())
            print(f"error: no summary {path} (finished variants of {a.method} on {a.dataset}: "
                  f"{', '.join(there) or 'none'}; datasets with summaries of {a.method}: {', '.join(datasets) or 'none'})",
                  file=sys.stderr)
            return 2
        try:
            rec = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            print(f"error: {path}: not a readable summary ({e})", file=sys.stderr)
            return 2
        outputs = rec.get("outputs") if isinstance(rec, dict) else None
        if not isinstance(outputs, dict) or out not in outputs:
            print(f"error: {path} has no output {out!r} (its outputs: "
                  f"{', '.join(outputs) if isinstance(outputs, dict) else 'none'}; choose with --output / "
                  "--reference-output)", file=sys.stderr)
            return 2
        rec["_path"] = str(path)
        recs.append(rec)
    output = a.output or a.method
    iv, why = row_interval(a.out_dir, recs[0], output, recs[1], a.reference_output or output, metric=a.metric, B=a.B)
    if iv is None:
        print(f"error: {a.variant} − {a.reference} on {a.dataset}: {why}", file=sys.stderr)
        return 2
    print(f"{a.method} {a.dataset} {a.metric}: {a.variant} − {a.reference} = {iv.text()} "
          f"({iv.level:.0%} interval, {iv.method}; {iv.num_queries} queries over {iv.num_splits} split(s))")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
