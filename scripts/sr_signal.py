"""Why G is silent as written: the VDSR-CA signal diagnostic for configurations and trained runs, from the shell.

For each ``--config``, a fresh G of that configuration at each initialisation (``he``, ``authors``, ``identity``);
for each ``--runs`` folder (a stage with a G: ``phase2``, ``solo_sr``), its trained G — all on the same batch of
training pairs of ``--manifest``'s split 0 (never test images), as notebook 08 does beside Table III
(:mod:`lib.models.sr.diagnostics`, :mod:`lib.results.sr_signal_report`). Prints the summary (body gain, residual / input,
gradient at G's first and last convolutions) and the gain per block; ``--figure`` draws the first configuration.

    PYTHONPATH=. python scripts/sr_signal.py --manifest outputs/cpu/mlr/viper-seed0 \\
        --config configs/pshrnet/paper.yaml configs/pshrnet/cpu.yaml \\
        --runs outputs/cpu/tuning/runs/pshrnet/viper/variants/*/split0/phase2 --figure docs/results/sr_signal_paper_size.png
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--manifest", required=True, help="an MLR dataset (its folder or manifest.json)")
    ap.add_argument("--config", nargs="+", default=["configs/pshrnet/paper.yaml"], help="PS-HRNet configurations")
    ap.add_argument("--runs", nargs="*", default=[], help="finished run folders whose trained G to measure")
    ap.add_argument("--num", type=int, default=16, help="training pairs in the batch (16)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--figure", default=None, help="write the first configuration's gain plot here (PNG)")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                    help="dotted overrides for every --config, e.g. sr.reduction=16 (the authors' 64→4 attention)")
    a = ap.parse_args(argv)

    from lib.core.cli import run_main

    return run_main(_main, a)


def _main(a: argparse.Namespace) -> int:
    import pandas as pd

    from lib.data import MLRDataset
    from lib.inference import load_run
    from lib.methods import load_config
    from lib.models import build_sr
    from lib.models.sr.diagnostics import SUMMARY, compare_inits, signal_report
    from lib.results.sr_signal_report import training_batch

    pd.set_option("display.width", 200)
    pd.set_option("display.float_format", "{:.3g}".format)
    train = MLRDataset.load(a.manifest).split(0).train
    import yaml

    overrides = {"model.weights": "none"}
    for item in a.set:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set: expected key=value, found {item!r}")
        overrides[key] = yaml.safe_load(value)
    for i, path in enumerate(a.config):
        cfg = load_config(path, overrides)
        make = lambda init, cfg=cfg: build_sr(replace(cfg.sr, init=init))  # noqa: E731
        x, t = training_batch(train, cfg.data.size, make("he").input_interpolation, tuple(cfg.data.rates), a.num)
        gains, summary = compare_inits(make, x, t, seed=a.seed)
        print(f"== {path}: {cfg.sr.name} {cfg.sr.depth} × {cfg.sr.width} (reduction {cfg.sr.reduction}) at "
              f"{cfg.data.size[0]} × {cfg.data.size[1]}")
        print(summary.to_string(index=False))
        print(gains.pivot(index="block", columns="init", values="gain").to_string())
        if i == 0 and a.figure:
            from lib.viz import save_figure, signal_gain_plot

            title = f"{cfg.sr.name} {cfg.sr.depth}×{cfg.sr.width} at {cfg.data.size[0]}×{cfg.data.size[1]}, fresh G"
            print(f"wrote {save_figure(signal_gain_plot(gains, title=title), a.figure)}")
        rows = []
        for run_dir in a.runs:
            run = load_run(run_dir)
            sr = run.modules.get("sr")
            if sr is None or tuple(run.cfg.data.size) != tuple(cfg.data.size):
                continue  # no G, or another input size than this configuration's batch
            rep = signal_report(sr, x.to(next(sr.parameters()).device), t.to(next(sr.parameters()).device))
            rows.append({"run": str(run_dir), **{k: rep[k] for k in SUMMARY}})
        if rows:
            print(pd.DataFrame(rows).to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
