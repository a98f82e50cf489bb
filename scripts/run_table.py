"""Run one table's variants and write the table without Jupyter (what the table's notebook does, as a script).

For machines without JupyterLab / papermill (e.g. a bare GPU box with torch): the same runs, run folders, summaries
and tables as the notebooks, and the spec's extras (Table III: per-rate table, Fig. 5, Solo SR vs bicubic).

    PYTHONPATH=. python scripts/run_table.py table3 --profile paper_gpu --config configs/pshrnet/paper.yaml \\
        --datasets viper --data-root DIR --splits 0 --variants bicubic solo_sr --set model.weights=none

A mistake of the command line (a bad table, profile or variant name, an unknown ``--set`` key, a wrong value type,
a missing configuration file) prints ``error: …`` and exits with status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import sys
import time

import yaml


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("table", help="a spec under configs/tables/ (table1 … table7 with a configs/pshrnet/ --config, "
                                  "ftwa_table1 and ftwa_table2 with a configs/ftwa/ one)")
    ap.add_argument("--profile", default="tiny")
    ap.add_argument("--output-root", default="outputs")
    ap.add_argument("--config", default="configs/pshrnet/tiny.yaml")
    ap.add_argument("--datasets", nargs="+", default=["synthetic"])
    ap.add_argument("--data-root", default="", help="folder of the datasets (used when an MLR manifest is missing)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--splits", type=int, nargs="+", default=[0])
    ap.add_argument("--variants", nargs="*", default=None, help="variant names (default: the spec's rows)")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="dotted configuration overrides")
    ap.add_argument("--weights", default="", help="YAML file 'backbone: weight source' (WEIGHTS of every row)")
    ap.add_argument("--num-examples", type=int, default=2, help="Table III: persons in Fig. 5 (NUM_EXAMPLES)")
    a = ap.parse_args(argv)
    from lib.core.cli import run_main

    return run_main(_main, a)  # a user's mistake: "error: …", exit 2


def _main(a: argparse.Namespace) -> int:
    from lib.utils.paths import check_name
    from lib.workflow import run_and_tabulate

    # names become files and folders (tables/<table>.md, outputs/<profile>/, …/variants/<variant>/): checked first
    check_name(a.table, "table")
    check_name(a.profile, "--profile")
    for v in a.variants or []:
        check_name(v, "--variants")
    overrides = {}
    for item in a.set:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"--set: expected key=value, found {item!r}")
        overrides[key] = yaml.safe_load(value)
    params = {"PROFILE": a.profile, "OUTPUT_ROOT": a.output_root, "DATASETS": a.datasets, "DATA_ROOT": a.data_root,
              "CONFIG": a.config, "SEED": a.seed, "SPLITS": a.splits, "OVERRIDES": overrides,
              "NUM_EXAMPLES": a.num_examples}
    if a.weights:
        from lib.workflow import load_weights_file

        params["WEIGHTS"] = load_weights_file(a.weights)
    if a.variants:
        params["VARIANTS"] = a.variants
    t0 = time.time()
    report = run_and_tabulate(params, a.table)
    print(report.markdown)
    for name, extra in report.extras.items():  # e.g. Table III's per-rate quality
        for attr in ("per_rate", "solo_vs_bicubic"):
            if hasattr(extra, attr):
                print(getattr(extra, attr).to_string(index=False))
    print("\n".join(map(str, report.files)))
    print(f"[run_table] {a.table}: {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
