"""Phase-2 training throughput (pairs/s) and inference throughput (images/s), fp32 eager vs fast paths.

One process measures every variant side by side on the same random batch, so the ratios are fair:

    python scripts/bench_train.py                       # paper model (HRNet-W32 + VDSR-CA) at 256×128
    python scripts/bench_train.py --backbone mobilenet_v2 --sr-depth 8 --sr-width 32

Variants: ``fp32`` (eager, NCHW), ``fp32+cl`` (channels_last), ``bf16+cl`` (bf16 autocast + channels_last).
The result goes to ``outputs/bench/train_<backbone>.json`` (written atomically).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time

import torch

from lib.engine.precision import Precision, cpu_has_fast_bf16, resolve_device
from lib.losses import LossConfig, TotalLoss
from lib.models import VDSRCA, HRNetReID, ReIDEmbedder
from lib.utils import atomic_write_json, repo_root, seed_everything

VARIANTS = {"fp32": (None, False), "fp32+cl": (None, True), "bf16+cl": (torch.bfloat16, True)}


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


def bench_variant(a, name: str, device: torch.device) -> dict:
    dtype, cl = VARIANTS[name]
    prec = Precision(device, dtype, cl)
    seed_everything(0)
    n = a.p * a.k
    teacher = prec.prepare_module(HRNetReID(a.backbone, num_classes=a.classes)).eval()
    student = prec.prepare_module(HRNetReID(a.backbone, num_classes=a.classes)).train()
    sr = prec.prepare_module(VDSRCA(depth=a.sr_depth, width=a.sr_width)).train()
    for p in teacher.parameters():
        p.requires_grad_(False)
    loss_fn = TotalLoss(LossConfig())
    opt = torch.optim.SGD([{"params": student.parameters()}, {"params": sr.parameters(), "lr": 8.5e-4}], lr=8.5e-3, momentum=0.9)
    g = torch.Generator().manual_seed(0)
    lr = prec.prepare_input(torch.randn(n, 3, a.height, a.width, generator=g))
    hr = prec.prepare_input(torch.randn(n, 3, a.height, a.width, generator=g))
    y = torch.arange(a.p).repeat_interleave(a.k).to(device)

    def train_step():
        with prec.autocast():
            with torch.no_grad():
                t_out = teacher(hr)
            restored = sr(lr)
            loss, _ = loss_fn(student(restored), y, restored=restored, hr=hr, teacher_out=t_out)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    emb = ReIDEmbedder(student, sr).eval()
    x = prec.prepare_input(torch.randn(a.infer_batch, 3, a.height, a.width, generator=g))

    def infer_step():
        with torch.inference_mode(), prec.autocast():
            emb(x)

    t_train = _timed(train_step, a.steps, a.warmup, device)
    t_infer = _timed(infer_step, a.steps, 1, device)
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None
    rec = {"variant": name, "train_step_s": round(t_train, 4), "pairs_per_s": round(n / t_train, 3),
           "infer_images_per_s": round(a.infer_batch / t_infer, 2), "peak_gpu_mem_gib": peak}
    print(json.dumps(rec), flush=True)
    return rec


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backbone", default="hrnet_w32")
    p.add_argument("--sr-depth", type=int, default=20)
    p.add_argument("--sr-width", type=int, default=64)
    p.add_argument("--height", type=int, default=256)
    p.add_argument("--width", type=int, default=128)
    p.add_argument("--p", type=int, default=2, help="identities per batch (paper 4)")
    p.add_argument("--k", type=int, default=2, help="pairs per identity (paper 6)")
    p.add_argument("--classes", type=int, default=316)
    p.add_argument("--infer-batch", type=int, default=8)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--device", default="auto")
    p.add_argument("--variants", default="fp32,fp32+cl,bf16+cl")
    a = p.parse_args(argv)
    device = resolve_device(a.device)
    results = [bench_variant(a, v, device) for v in a.variants.split(",")]
    base = next((r for r in results if r["variant"] == "fp32"), results[0])
    for r in results:
        r["train_speedup_vs_fp32"] = round(r["pairs_per_s"] / base["pairs_per_s"], 2)
        r["infer_speedup_vs_fp32"] = round(r["infer_images_per_s"] / base["infer_images_per_s"], 2)
    best = max(results, key=lambda r: r["pairs_per_s"])
    out = {
        "benchmark": "phase-2 training step (teacher fwd + VDSR-CA + student fwd/bwd + SGD) and inference",
        "command": "python " + " ".join([sys.argv[0]] + list(argv if argv is not None else sys.argv[1:])),
        "backbone": a.backbone, "sr": {"depth": a.sr_depth, "width": a.sr_width}, "input": [a.height, a.width],
        "pairs_per_batch": a.p * a.k, "steps": a.steps, "device": str(device),
        "device_name": torch.cuda.get_device_name() if device.type == "cuda" else platform.processor() or platform.machine(),
        "cpu_native_bf16": cpu_has_fast_bf16(), "threads": torch.get_num_threads(), "torch": torch.__version__,
        "results": results, "fastest": best["variant"],
    }
    path = atomic_write_json(repo_root() / "outputs" / "bench" / f"train_{a.backbone}.json", out)
    print(f"fastest: {best['variant']} ({best['train_speedup_vs_fp32']}× fp32 eager training); wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
