"""``python -m lib.features``: export a run's test features to a file; score a feature file (ours or another toolbox's).

    python -m lib.features export --run outputs/tiny/runs/pshrnet/synthetic/variants/default --split 0 \\
        --out outputs/tiny/features/pshrnet_split0.npz
    python -m lib.features evaluate outputs/tiny/features/pshrnet_split0.npz --json metrics.json
    python -m lib.features evaluate torchreid_market.npz --distance euclidean   # features a torchreid user wrote

``export``: ``--run`` is a stage folder, a variant's link to one, a variant's split folder, or a variant folder with
``--split K``; the file holds the split's query and gallery features through the run's own test paths, their
pids, camids and image paths, the run's distance and protocol, and the run's identity and recorded metrics (then
it scores itself and prints that beside the record). ``evaluate``: the file's distance and protocol unless
``--distance`` / ``--normalize`` / ``--protocol`` replace them; prints Rank-1/5/10 and mAP, ``--json`` writes them.
The format: :mod:`lib.features.format`, docs/using_runs.md. A user's mistake is one ``error: …`` line, exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..core.cli import run_main
from ..utils.io import atomic_write_json
from .evaluate import PROTOCOLS, evaluate_features, summary_line
from .export import export_run
from .format import FeatureFile, FeatureFileError

__all__ = ["main"]


def _describe(ff: FeatureFile, r: dict[str, Any]) -> str:
    metric = ", ".join(f"{k} {json.dumps(v)}" for k, v in r["metric"].items() if k != "distance")
    proto = ", ".join(f"{k} {json.dumps(v)}" for k, v in r["protocol"].items() if k != "name")
    return (f"{ff.num_query} queries × {ff.num_gallery} gallery images, D = {ff.qf.shape[1]}; distance "
            f"{r['metric']['distance']}{f' ({metric})' if metric else ''}; protocol {r['protocol']['name']}"
            f"{f' ({proto})' if proto else ''}")


def _source(run: dict[str, Any] | None) -> str | None:
    if not run:
        return None
    get = lambda k: run.get(k, "?")  # noqa: E731
    return f"{get('method')}/{get('output')} ({get('stage')} of split {get('split')}, {get('run_dir')})"


def _export(a: argparse.Namespace) -> int:
    from ..rank import check_writable

    out = Path(a.out)
    if out.suffix != ".npz":
        raise FeatureFileError(f"--out {out}: expected a file name ending in .npz")
    check_writable([out])  # before the run is loaded and embedded
    ff = export_run(a.run, split=a.split, output=a.output)
    r = evaluate_features(ff, where=str(out))
    ff.save(out)
    print(f"exported {_source(ff.run)}: {_describe(ff, r)}")
    print(f"  the file scores  {summary_line(r)}")
    rec = ff.run["recorded"]
    if rec:
        print(f"  the run recorded {summary_line(rec)}")
        if any(abs(r[k] - rec[k]) > 1e-6 for k in rec if k in r):
            print("  note: the file's scores differ from the run's record (this machine's device or numerics differ "
                  "from the run's?)")
    print(f"wrote {out}")
    return 0


def _override(a: argparse.Namespace, ff: FeatureFile) -> tuple[dict | None, dict | None]:
    metric = None
    if a.distance is not None or a.normalize is not None:
        metric = {"distance": a.distance} if a.distance is not None else dict(ff.metric)
        if a.normalize is not None:
            metric["normalize"] = a.normalize
    protocol = None
    if a.protocol is not None or a.num_repeats is not None or a.seed is not None:
        protocol = {"name": a.protocol} if a.protocol is not None else dict(ff.protocol)
        protocol |= {k: v for k, v in (("num_repeats", a.num_repeats), ("seed", a.seed)) if v is not None}
    return metric, protocol


def _evaluate(a: argparse.Namespace) -> int:
    ff = FeatureFile.load(a.file)
    metric, protocol = _override(a, ff)
    where = str(a.file)
    r = evaluate_features(ff, metric=metric, protocol=protocol, where=where)
    print(f"{where}: {_describe(ff, r)}")
    print(summary_line(r))
    src = _source(ff.run)
    rec = (ff.run or {}).get("recorded")
    if src and rec:
        same = metric is None and protocol is None
        print(f"from {src}; the run recorded {summary_line(rec)}{'' if same else ' (with its own distance/protocol)'}")
    if ff.ignored:
        print(f"note: keys outside the format, ignored: {', '.join(ff.ignored)}")
    if a.json:
        info = {k: v for k, v in (ff.run or {}).items() if k != "identity"}
        atomic_write_json(a.json, r | {"file": where, "source": info or None})
        print(f"wrote {a.json}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lib.features", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("export", help="a finished run's test features → an .npz feature file")
    ex.add_argument("--run", required=True, help="a run folder: stage folder, variant link, split folder, or a variant "
                                                 "folder with --split")
    ex.add_argument("--split", type=int, default=None, help="the run's identity split (default: a stage or split folder's own; "
                                                               "needed with a variant folder, which holds one per split)")
    ex.add_argument("--out", required=True, help="the .npz file to write")
    ex.add_argument("--output", default=None, help="the method output (default: the stage's main one)")
    ev = sub.add_parser("evaluate", help="score a feature file with this workbook's evaluator")
    ev.add_argument("file", help="an .npz feature file (docs/using_runs.md for the format)")
    ev.add_argument("--json", default=None, help="also write the metrics to this JSON file")
    ev.add_argument("--distance", default=None, help="replace the file's distance (cosine, euclidean, …)")
    ev.add_argument("--normalize", action=argparse.BooleanOptionalAction, default=None,
                    help="L2-normalise the rows before cosine / euclidean (replaces the file's setting)")
    ev.add_argument("--protocol", choices=sorted(PROTOCOLS), default=None, help="replace the file's protocol")
    ev.add_argument("--num-repeats", type=int, default=None, help="single_shot: gallery draws (default 10)")
    ev.add_argument("--seed", type=int, default=None, help="single_shot: the draws' seed (default 0)")
    a = ap.parse_args(argv)
    return run_main(_export if a.command == "export" else _evaluate, a)


if __name__ == "__main__":
    sys.exit(main())
