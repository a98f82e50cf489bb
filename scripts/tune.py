"""Choose hyper-parameters on validation identities carved from the training set (never on test identities).

Trains the stages of a method (PS-HRNet: phase 1, phase 2, baseline, solo_sr; FTWA: train — pass ``--notebook
11_ftwa`` for the profile's FTWA configuration) with a profile's configuration plus overrides on a
:class:`lib.data.ValidationView` of a dataset — ``--val-ids`` of split ``k``'s training identities held out
as query (LR) / gallery (HR), the rest trained on — and appends one row per stage to
``outputs/<profile>/tuning/<dataset>/<name>.csv`` (validation Rank-1/5/10 and mAP; phase 1 also HR→HR).
``--collect`` prints every row of a profile and dataset as one table (sorted by stage, then Rank-1). FTWA rows
also give the Rank-1 of every test-time matching (``r1_swa``, ``r1_mean``, ``r1_hr``, ``r1_lr``, ``r1_direct``): one
training, every matching compared on the validation identities (``test.match`` is chosen this way).

Example (the settings of ``configs/pshrnet/cpu.yaml`` were chosen this way; README "Validation protocol")::

    python scripts/tune.py --profile cpu --dataset viper --name adam_re \\
        --set phase1.optimizer=adam phase1.lr=0.00035 data.random_erasing=0.5 --stages phase1

Runs live in ``outputs/<profile>/tuning/runs/pshrnet/<dataset>/stages/split<k>/<stage>-<hash>/`` (the run lifecycle
of every stage: the same identity is the same folder, shared between variants; the validation view has its own
manifest fingerprint, so it never shares a run with the test protocol) and resume like any run.

A mistake of the command line or the profile (a bad ``--profile`` / ``--name`` / ``--dataset`` name, an unknown
``--set`` key, a wrong parameter type, a missing file) prints ``error: …`` and exits with status 2, without a
traceback.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
import time

import yaml

from lib.data import MLRDataset, ValidationView
from lib.methods import METHODS, method_of, run_variant
from lib.methods.ftwa.matching import MATCHES  # FTWA's test-time matchings: a column each
from lib.utils.io import atomic_write_text
from lib.utils.paths import check_name
from lib.workbook import load_profile, profile_name
from lib.workflow import experiment_config, locate_dataset, output_dir, validate_params

#: stage → the method outputs it produces
STAGES = {"phase1": ("teacher_lr", "teacher_hr"), "phase2": ("pshrnet",), "baseline": ("baseline",),
          "solo_sr": ("solo_sr",), "train": ("ftwa",)}


def parse_overrides(items: list[str]) -> dict:
    out = {}
    for it in items:
        key, sep, value = it.partition("=")
        if not sep or not key or key.isupper():
            raise SystemExit(f"--set {it!r}: expected key=value with a dotted configuration key (e.g. phase1.lr=0.001)")
        out[key] = yaml.safe_load(value)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="cpu")
    ap.add_argument("--dataset", default="viper")
    ap.add_argument("--data-root", default="../shared/data", help="folder holding the dataset folders")
    ap.add_argument("--output-root", default="outputs")
    ap.add_argument("--name", help="name of this variant (its run folder and CSV file)")
    ap.add_argument("--collect", action="store_true", help="print the rows of every variant run so far and exit")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="parameter overrides")
    ap.add_argument("--stages", default="phase1", help="comma-separated: phase1, phase2, baseline, solo_sr (PS-HRNet) or train (FTWA)")
    ap.add_argument("--splits", default="0", help="comma-separated split indices (default 0)")
    ap.add_argument("--val-ids", type=int, default=60, help="validation identities per split (default 60)")
    ap.add_argument("--notebook", default="02_phase1_hr_reid",
                    help="the profile section whose CONFIG is used (11_ftwa: the FTWA configuration)")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args(argv)
    from lib.core.cli import run_main

    return run_main(_main, a)  # a user's mistake: "error: …", exit 2


def _last_epoch(run_dir) -> dict:
    """The last record of a run's history (``{}`` for a run that trained nothing)."""
    from lib.core.runs import saved_history

    hist = saved_history(run_dir)
    return hist[-1] if hist else {}


def _g_gain(last: dict):
    """G's PSNR over its own input at the last epoch (dB; ``runtime.monitor_images``), or ``""`` when not logged."""
    if "g_psnr" in last and "input_psnr" in last:
        return round(float(last["g_psnr"]) - float(last["input_psnr"]), 3)
    return ""


def _main(a: argparse.Namespace) -> int:
    # names become folders and files (outputs/<profile>/tuning/<dataset>/<name>.csv): checked before any work
    pname = profile_name(a.profile)  # --profile may be a name or a profile's YAML file
    check_name(a.dataset, "--dataset")
    if a.name is not None:
        check_name(a.name, "--name")
    if a.collect:
        import pandas as pd

        where = output_dir({"PROFILE": pname, "OUTPUT_ROOT": a.output_root}) / "tuning" / a.dataset
        files = sorted(where.glob("*.csv"))
        if not files:
            raise SystemExit(f"no tuning results under {where}")
        df = pd.concat([pd.read_csv(f) for f in files]).sort_values(["stage", "rank1"], ascending=[True, False])
        print(df.drop(columns=["overrides"]).to_string(index=False))
        return 0
    if not a.name:
        raise SystemExit("--name is required (or --collect)")
    stages = [s for s in a.stages.split(",") if s]
    bad = sorted(set(stages) - set(STAGES))
    if bad:
        raise SystemExit(f"--stages: unknown {bad}; expected some of {STAGES}")
    prof = load_profile(a.profile)
    section = prof.get(a.notebook, {})
    params = {**section, "OVERRIDES": {**section.get("OVERRIDES", {}), **parse_overrides(a.set)}}
    params |= {"DATASET": a.dataset, "DATA_ROOT": a.data_root, "PROFILE": pname, "OUTPUT_ROOT": a.output_root}
    try:  # a wrong type in the profile is the user's mistake (a TypeError later is a bug: it keeps its traceback)
        validate_params(params, where=f"profile {a.profile!r}, section {a.notebook}")
    except TypeError as e:
        raise ValueError(str(e)) from None
    cfg = experiment_config(params)
    method = method_of(cfg)
    foreign = [st for st in stages if st not in method.stages]
    if foreign:
        raise SystemExit(f"--stages {','.join(foreign)}: not stages of {method.name} ({params.get('CONFIG')}, from the "
                         f"profile's {a.notebook} section); its stages: {', '.join(method.stages)}"
                         + ("; for FTWA pass --notebook 11_ftwa" if "train" in foreign else ""))
    view = ValidationView(MLRDataset.load(locate_dataset(params, progress=not a.quiet)), a.val_ids, seed=cfg.seed)
    base = output_dir(params) / "tuning"
    rows = []
    for k in [int(s) for s in a.splits.split(",")]:
        t0 = time.time()
        outputs = [o for st in stages for o in STAGES[st]]
        _, runs = run_variant(method, cfg, ds=view, split=k, root=base / "runs", variant=a.name, outputs=outputs,
                              progress=not a.quiet)
        rows += [(st, k, runs[st].metrics, time.time() - t0, _last_epoch(runs[st].run_dir)) for st in stages]
    table = base / view.name / f"{a.name}.csv"
    fields = ["name", "stage", "split", "val_ids", "test_feature", "rank1", "rank5", "rank10", "mAP", "hr_rank1", "psnr",
              "ssim", "g_gain_db", *(f"r1_{m}" for m in MATCHES), "wall_s", "overrides", "not_learning"]
    previous = list(csv.DictReader(io.StringIO(table.read_text()))) if table.is_file() else []
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields, restval="")
    w.writeheader()
    for rec in previous:  # rows written before a column existed get it empty
        w.writerow({k: rec.get(k, "") for k in fields})
    for stage, k, m, wall, last in rows:
        lr = m["lr"]
        rec = {"name": a.name, "stage": stage, "split": k, "val_ids": a.val_ids,
               "test_feature": getattr(cfg.test, "feature", getattr(cfg.test, "match", "")),
               **{f"r1_{x}": round(100 * lr[f"match_{x}_rank1"], 2) for x in MATCHES if f"match_{x}_rank1" in lr},
               **{c: round(100 * lr[c], 2) for c in ("rank1", "rank5", "rank10", "mAP")},
               "hr_rank1": round(100 * m["hr"]["rank1"], 2) if "hr" in m else "", "wall_s": round(wall, 1),
               "psnr": round(lr["psnr"], 3) if "psnr" in lr else "", "ssim": round(lr["ssim"], 4) if "ssim" in lr else "",
               "g_gain_db": _g_gain(last), "overrides": " ".join(a.set), "not_learning": lr.get("not_learning", "")}
        w.writerow(rec)
        print(f"{a.name:24s} {stage:8s} split {k}: val LR→HR R1 {rec['rank1']:5.1f}  R5 {rec['rank5']:5.1f}  "
              f"mAP {rec['mAP']:5.1f}" + (f"  HR→HR R1 {rec['hr_rank1']:5.1f}" if rec["hr_rank1"] != "" else "")
              + (f"  PSNR {rec['psnr']:.2f} dB  SSIM {rec['ssim']:.4f}" if rec["psnr"] != "" else "")
              + (f"  G {rec['g_gain_db']:+.2f} dB over its input (training images)" if rec["g_gain_db"] != "" else "")
              + "".join(f"  {x} {rec[f'r1_{x}']:.1f}" for x in MATCHES if f"r1_{x}" in rec)
              + (f"  NOT LEARNING: {rec['not_learning']}" if rec["not_learning"] else ""))
    atomic_write_text(table, buf.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
