"""Train / evaluate one method variant from the command line — the entry point for ``torchrun`` (DDP).

    python -m lib.train --config configs/pshrnet/cpu.yaml --dataset viper --profile cpu --splits 0 1 2 \\
        --variant default --outputs pshrnet baseline --set phase2.epochs=10
    torchrun --nproc_per_node 4 -m lib.train --config configs/pshrnet/paper.yaml --dataset market1501 --profile paper

Runs land in ``outputs/<profile>/runs/`` exactly as the notebooks' (the same identity is the same folder), and
a summary is written to ``outputs/<profile>/results/<method>/<dataset>/<variant>.json``. Under ``torchrun`` every
rank trains on its share of the P × K batches (DDP); rank 0 writes checkpoints, histories, metrics and summaries.
The MLR dataset must exist (notebook 01 / ``make mlr``) when more than one process runs.

A mistake of the command line (a bad ``--profile`` / ``--variant`` name, an unknown ``--set`` key, a wrong value
type, a missing configuration file) prints ``error: …`` and exits with status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import yaml

__all__ = ["main"]


def _parse_set(items: Sequence[str]) -> dict:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"--set: expected key=value (dotted key, YAML value), found {item!r}")
        out[key] = yaml.safe_load(value)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m lib.train", description=__doc__.split("\n\n")[0])
    p.add_argument("--config", required=True, help="a method configuration, e.g. configs/pshrnet/cpu.yaml")
    p.add_argument("--dataset", required=True, help="dataset name (its MLR manifest under outputs/<profile>/mlr/)")
    p.add_argument("--profile", default="tiny", help="output folder name under --output-root")
    p.add_argument("--output-root", default="outputs")
    p.add_argument("--data-root", default="", help="dataset folder (only used when its MLR manifest is missing)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--splits", type=int, nargs="+", default=[0])
    p.add_argument("--variant", default="default")
    p.add_argument("--outputs", nargs="+", default=None, help="method outputs to produce (default: all)")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="dotted configuration overrides")
    p.add_argument("--no-progress", action="store_true")
    a = p.parse_args(argv)
    from .core.cli import run_main

    return run_main(_main, a)  # a user's mistake: "error: …", exit 2


def _main(a: argparse.Namespace) -> int:
    from .engine import distributed as D
    from .utils.paths import check_name
    from .workflow import experiment_config, run_experiment

    # names become folders (outputs/<profile>/, …/variants/<variant>/): checked before anything is read or written
    check_name(a.profile, "--profile")
    check_name(a.variant, "--variant")
    params = {"PROFILE": a.profile, "OUTPUT_ROOT": a.output_root, "DATASETS": [a.dataset], "DATA_ROOT": a.data_root,
              "CONFIG": a.config, "SEED": a.seed, "SPLITS": a.splits, "OVERRIDES": _parse_set(a.set)}
    experiment_config(params)  # the configuration with every --set, checked before a process group starts
    distributed = D.init_distributed()
    if distributed:  # the ranks must not build the dataset each on its own: it must exist (run_stage then checks
        from .workflow import manifest_path  # that every rank loaded the same build)

        path = manifest_path({**params, "DATASET": a.dataset})
        if not path.is_file():
            raise SystemExit(f"{path} does not exist: build the MLR dataset first (make mlr / notebook 01)")
    from .methods import load_config

    cfg = load_config(a.config)
    from .methods import METHODS, method_of

    method = method_of(cfg)
    outputs = a.outputs or list(method.outputs)
    exp = run_experiment(params, {a.variant: {}}, {a.variant: outputs}, progress=not a.no_progress)
    if D.is_main():
        for (variant, ds), rec in exp.summaries.items():
            for o, v in rec["outputs"].items():
                agg = v["aggregate"]
                print(f"{ds} {variant} {o}: Rank-1 {100 * agg['rank1']['mean']:.1f} ± {100 * agg['rank1']['std']:.1f} "
                      f"over splits {rec['splits']}", flush=True)
    if distributed:
        import torch.distributed as dist

        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
