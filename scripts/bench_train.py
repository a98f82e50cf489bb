"""Phase-2 training throughput: the model step alone, and end to end (data loading included).

    python scripts/bench_train.py                                   # paper model (HRNet-W32 + VDSR-CA 20×64), 256×128
    python scripts/bench_train.py --backbone mobilenet_v2 --sr-depth 8 --sr-width 32 --height 128 --width 64
    python scripts/bench_train.py --p 16 --k 6 --variants bf16+cl --compile   # a GPU: bigger batch, torch.compile

*Model step*: teacher forward + SR + student forward/backward + optimiser step on one fixed batch (no data), per
numerics variant: ``fp32`` (eager, NCHW), ``fp32+cl`` (channels_last), ``bf16+cl`` (bf16 autocast + channels_last).
*End to end*: the real phase-2 stage (:mod:`lib.methods.pshrnet.stages`) run by the generic trainer for a few epochs
on synthetic images of the input size written to disk (PNG decode, fresh LR pairs, augmentation, DataLoader workers
and pinned memory on CUDA), first epoch discarded as warm-up: pairs/s, the share of the epoch spent waiting for
data, and peak GPU memory. The result goes to ``outputs/bench/train_<backbone>.json`` (written atomically).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

from lib.scale.bench import bench_dataset, device_name
from lib.core.runs import HIDDEN_SECTIONS, RunResult, StageContext
from lib.core.tracking import ConfigReader
from lib.data import MLRDataset
from lib.engine import Trainer
from lib.engine.precision import Precision, cpu_has_fast_bf16, resolve_device
from lib.losses import LossComposer
from lib.methods import load_config
from lib.methods.pshrnet.stages import STAGES
from lib.methods.pshrnet.steps import PseudoSiameseStep
from lib.models import build_reid_model, build_sr
from lib.utils import atomic_write_json, repo_root, seed_everything

VARIANTS = {"fp32": ("fp32", False), "fp32+cl": ("fp32", True), "bf16+cl": ("bf16", True)}


def _timed(fn, steps: int, warmup: int, device: torch.device) -> float:
    for _ in range(warmup):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return sorted(times)[len(times) // 2]  # median step time


def _config(a, variant: str):
    precision, cl = VARIANTS[variant]
    return load_config("configs/pshrnet/paper.yaml", {
        "model.backbone": a.backbone, "model.weights": "none", "sr.depth": a.sr_depth, "sr.width": a.sr_width,
        "data.height": a.height, "data.width": a.width, "data.num_identities": a.p, "data.num_instances": a.k,
        "runtime.device": a.device, "runtime.precision": precision, "runtime.channels_last": cl,
        "runtime.compile": a.compile, "runtime.num_workers": a.workers,
        # throughput only: a random-init teacher makes L_PS huge at the paper's rates, so train gently and never stop
        "phase2.lr": 1e-5, "phase2.module_lr": {"sr": 1e-6}, "runtime.max_loss": 1e30})


def model_step(a, cfg, prec: Precision, classes: int) -> dict:
    """The phase-2 step on one fixed random batch (no data loading)."""
    seed_everything(0)
    n = a.p * a.k
    teacher = prec.prepare_module(build_reid_model(cfg.model, classes)).eval().requires_grad_(False)
    student = prec.prepare_module(build_reid_model(cfg.model, classes)).train()
    sr = prec.prepare_module(build_sr(cfg.sr)).train()
    if a.compile:
        teacher, student_c, sr_c = torch.compile(teacher), torch.compile(student), torch.compile(sr)
    else:
        student_c, sr_c = student, sr
    step = PseudoSiameseStep(teacher, sr_c, student_c, LossComposer(cfg.phase2.losses, cfg.loss), prec)
    opt = torch.optim.SGD([{"params": student.parameters()}, {"params": sr.parameters(), "lr": 8.5e-4}], lr=8.5e-3,
                          momentum=0.9)
    g = torch.Generator().manual_seed(0)
    batch = {"lr": torch.randn(n, 3, a.height, a.width, generator=g), "hr": torch.randn(n, 3, a.height, a.width, generator=g),
             "label": torch.arange(a.p).repeat_interleave(a.k)}
    batch = {k: v.to(prec.device) for k, v in batch.items()}

    def train_step():
        with prec.autocast():
            loss, _, _ = step(batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    if prec.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t = _timed(train_step, a.steps, a.warmup, prec.device)
    peak = round(torch.cuda.max_memory_allocated() / 2**20) if prec.device.type == "cuda" else None
    return {"model_step_s": round(t, 4), "model_pairs_per_s": round(n / t, 2), "model_gpu_peak_mib": peak}


def end_to_end(a, cfg, prec: Precision, ds: MLRDataset) -> dict:
    """The real phase-2 stage (data included) for ``a.epochs`` epochs; epoch 1 is warm-up."""
    seed_everything(0)
    teacher = build_reid_model(cfg.model, ds.split(0).num_train_ids)
    deps = {"phase1": RunResult("phase1", {"model": teacher}, {}, [], Path("."), {}, "bench")}
    ctx = StageContext(method="pshrnet", stage="phase2", cfg=ConfigReader(cfg, hidden=HIDDEN_SECTIONS), test=cfg.test,
                       runtime=cfg.runtime, ds=ds, split=0, prec=prec, deps=deps, progress=False)
    plan = STAGES["phase2"].build(ctx)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(trainable=plan.modules, frozen=plan.frozen, make_step=plan.make_step, dataset=plan.dataset,
                          sampler=plan.sampler, optim=dataclasses.replace(plan.optim, epochs=a.epochs), precision=prec,
                          run_dir=tmp, run_config={}, progress=False,
                          **{**cfg.runtime.trainer_kwargs(), "max_steps_per_epoch": a.max_steps or None})
        hist = trainer.fit()
    warm = hist[1:] or hist
    samples, secs = sum(h["samples"] for h in warm), sum(h["time_s"] for h in warm)
    return {"e2e_pairs_per_s": round(samples / secs, 2), "e2e_data_frac": round(max(h["data_frac"] for h in warm), 3),
            "e2e_steps_per_epoch": warm[-1]["steps"], "e2e_workers": trainer.num_workers,
            "e2e_gpu_peak_mib": warm[-1].get("gpu_peak_mib"), "e2e_first_epoch_s": hist[0]["time_s"]}


def synthetic_dataset(a) -> MLRDataset:
    return bench_dataset(a.height, a.width, identities=a.identities, images=a.images)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backbone", default="hrnet_w32")
    p.add_argument("--sr-depth", type=int, default=20)
    p.add_argument("--sr-width", type=int, default=64)
    p.add_argument("--height", type=int, default=256)
    p.add_argument("--width", type=int, default=128)
    p.add_argument("--p", type=int, default=4, help="identities per batch (paper 4)")
    p.add_argument("--k", type=int, default=6, help="pairs per identity (paper 6)")
    p.add_argument("--steps", type=int, default=3, help="model-step repetitions (median)")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--epochs", type=int, default=2, help="end-to-end epochs (the first is warm-up)")
    p.add_argument("--max-steps", type=int, default=0, help="end-to-end steps per epoch (0: whole epochs)")
    p.add_argument("--identities", type=int, default=40, help="synthetic identities (2 cameras)")
    p.add_argument("--images", type=int, default=4, help="synthetic images per identity and camera")
    p.add_argument("--workers", type=int, default=-1, help="DataLoader workers (-1: auto)")
    p.add_argument("--compile", action="store_true", help="torch.compile the trained modules")
    p.add_argument("--no-e2e", action="store_true", help="model step only")
    p.add_argument("--device", default="auto")
    p.add_argument("--variants", default="fp32,fp32+cl,bf16+cl")
    p.add_argument("--tag", default="", help="appended to the output file name")
    a = p.parse_args(argv)
    device = resolve_device(a.device)
    ds = None if a.no_e2e else synthetic_dataset(a)
    results = []
    for v in a.variants.split(","):
        cfg = _config(a, v)
        prec = cfg.runtime.precision_for()
        rec = {"variant": v, **model_step(a, cfg, prec, classes=a.identities // 2)}
        print(json.dumps(rec), flush=True)
        if ds is not None:
            rec |= end_to_end(a, cfg, prec, ds)
        print(json.dumps(rec), flush=True)
        results.append(rec)
    best = max(results, key=lambda r: r.get("e2e_pairs_per_s", r["model_pairs_per_s"]))
    out = {
        "benchmark": "phase-2 training: model step (teacher fwd + SR + student fwd/bwd + SGD) and end to end (data included)",
        "command": "python " + " ".join([sys.argv[0]] + list(argv if argv is not None else sys.argv[1:])),
        "backbone": a.backbone, "sr": {"depth": a.sr_depth, "width": a.sr_width}, "input": [a.height, a.width],
        "pairs_per_batch": a.p * a.k, "compile": a.compile, "device": str(device),
        "device_name": device_name(device),
        "cpu_native_bf16": cpu_has_fast_bf16(), "threads": torch.get_num_threads(), "torch": torch.__version__,
        "results": results, "fastest": best["variant"],
    }
    path = atomic_write_json(repo_root() / "outputs" / "bench" / f"train_{a.backbone}{a.tag}.json", out)
    print(f"fastest: {best['variant']}; wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
