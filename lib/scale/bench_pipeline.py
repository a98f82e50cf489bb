"""The two data paths side by side (issue #22 §3): what ``make bench`` prints after the per-stage table.

For the profile's PS-HRNet phase 2 (the stage the paper's training time goes to; any other ``method/stage`` with
``--pipeline-stage``), built as its runs are (configuration, device, precision, channels_last, DataLoader workers,
the decoded-image cache where the profile's runtime uses it) on the bench's synthetic images at the stage's input
size, and for each data path (``data.pipeline``: ``pil``, ``tensor``) and batch (the paper's P × K 4 × 6 and a
larger one: 16 × 6 on CUDA, 8 × 6 on the CPU):

* **data only**: pairs/s of the training loader with the batch finished for the step (the tensor path's device
  work included, synchronised), no model, over two whole epochs after a warm-up one;
* **model step**: pairs/s of forward + backward + optimiser step on one finished batch already on the device,
  repeated after three warm-up steps (no data work, no host-to-device copy);
* **end to end**: pairs/s of the generic trainer over whole steps, as a run's ``history.csv`` records it, with the
  share of the time spent waiting for the loader (``data_frac``) and, for the tensor path, making the batch on the
  device (``render_frac``; on CUDA the launch time only — the work itself overlaps the step).

The first epoch / first batches are warm-up and not timed. Written to ``outputs/bench/pipelines.json`` (a list of
rows with the device, its name and the command) and printed as a table.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from typing import Any

__all__ = ["PIPELINES_FILE", "bench_pipelines", "format_rows"]

#: Where ``make bench`` writes the data-path comparison (relative to the repository).
PIPELINES_FILE = "outputs/bench/pipelines.json"


def _sync(dev) -> None:
    import torch

    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def _finished(trainer, batch):
    render = getattr(trainer.dataset, "render", None)
    return render(batch, trainer.precision.device) if render is not None else batch


def _data_only(trainer, epochs: int) -> float:
    """Pairs/s of the loader plus the batch's finishing (no model), over ``epochs`` whole epochs after a warm-up one.
    Timing whole epochs from the start of their iterator counts the workers' start-up and the filling of the prefetch
    queue each epoch, as training does; a few batches timed inside one epoch would mostly drain batches the workers
    made before the clock started."""
    dev = trainer.precision.device
    n, secs = 0, 0.0
    for epoch in range(epochs + 1):
        t = time.perf_counter()
        k = 0
        for k, b in enumerate(trainer._loader(epoch), 1):
            b = _finished(trainer, b)
            if k == trainer.max_steps:
                break
        _sync(dev)
        if epoch:  # the first epoch is warm-up (worker start, first allocations)
            n, secs = n + k * trainer.sampler.batch_size, secs + time.perf_counter() - t
    return n / secs


def _on_device(batch: dict, dev) -> dict:
    """The batch's tensors on ``dev`` (what the step would copy every time: the model-step figure leaves it out)."""
    return {k: v.to(dev) if hasattr(v, "to") and k not in ("has_hr",) else v for k, v in batch.items()}


def _model_step(trainer, batch, steps: int, warmup: int = 3) -> float:
    """Pairs/s of forward + backward + optimiser step on one finished batch already on the device; ``warmup`` steps
    first (kernel selection, CUDA-graph recording under ``compile: reduce-overhead``)."""
    dev = trainer.precision.device
    for m in trainer.trainable.values():
        m.train()

    def step() -> int:
        with trainer.precision.autocast():
            loss, _, bs = trainer.step_fn(batch)
        trainer.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        trainer.optimizer.step()
        return bs

    for _ in range(warmup):
        step()
    _sync(dev)
    n, t = 0, time.perf_counter()
    for _ in range(steps):
        n += step()
    _sync(dev)
    return n / (time.perf_counter() - t)


def bench_pipelines(run, *, device: str = "auto", steps: int = 4, batches: Sequence[tuple[int, int]] | None = None,
                    pipelines: Sequence[str] = ("pil", "tensor"), data_root=None, report=print) -> list[dict[str, Any]]:
    """One row per (pipeline, P × K) for planned run ``run``'s stage (:class:`lib.scale.plan.PlannedRun`); see the module
    docstring. ``batches`` default: ``[(4, 6), (16, 6)]`` on CUDA, ``[(4, 6), (8, 6)]`` on the CPU."""
    import torch

    from .bench import build_bench_stage, bench_trainer, device_name
    from ..data.image_cache import activate, build_cache, deactivate
    from ..engine.precision import resolve_device

    if steps < 1:
        raise ValueError(f"bench_pipelines: steps ≥ 1 is required, found {steps}")
    dev = resolve_device(device)
    batches = list(batches or ([(4, 6), (16, 6)] if dev.type == "cuda" else [(4, 6), (8, 6)]))
    rows = []
    for p, k in batches:
        for pipe in pipelines:
            over = {"data.pipeline": pipe, "data.num_identities": p, "data.num_instances": k}
            plan, runtime, prec, ds = build_bench_stage(run, str(dev), steps + 1, data_root, over)
            cache = build_cache(ds) if runtime.uses_image_cache() else None  # as run_stage does for a run
            if cache is not None:
                activate(cache)
            bench_flag = torch.backends.cudnn.benchmark
            try:
                with tempfile.TemporaryDirectory(prefix="bench-pipe-") as tmp:
                    t0 = time.time()
                    tr = bench_trainer(plan, runtime, prec, tmp, 2, steps, f"bench {run.method}/{run.stage} [{pipe}]")
                    torch.backends.cudnn.benchmark = tr.cudnn_benchmark  # all three figures as the run trains
                    try:
                        data_ps = _data_only(tr, 2)
                        batch = _on_device(_finished(tr, next(iter(tr._loader(0)))), prec.device)
                        model_ps = _model_step(tr, batch, steps)
                    finally:
                        tr.close()
                    hist = tr.fit()
                    e2e = hist[-1]
            finally:
                torch.backends.cudnn.benchmark = bench_flag
                if cache is not None:
                    deactivate(cache)
            row = {"method": run.method, "stage": run.stage, "backbone": run.backbone, "pipeline": pipe,
                   "P": p, "K": k, "pairs": p * k, "device": prec.device.type, "device_name": device_name(prec.device),
                   "precision": prec.name, "workers": tr.num_workers, "image_cache": cache is not None,
                   "threads": torch.get_num_threads(), "steps": steps,
                   "data_pairs_per_s": round(data_ps, 1), "model_pairs_per_s": round(model_ps, 1),
                   "e2e_pairs_per_s": e2e["samples_per_s"], "data_frac": e2e["data_frac"],
                   "render_frac": e2e.get("render_frac", 0.0), "gpu_peak_mib": e2e.get("gpu_peak_mib"),
                   "seconds": round(time.time() - t0, 1)}
            report(format_rows([row], header=not rows))
            rows.append(row)
    return rows


def format_rows(rows: Sequence[dict], header: bool = True) -> str:
    """The comparison as a fixed-width table (what ``make bench`` prints)."""
    head = (f"{'path':<7} {'P×K':>5} {'data-only':>10} {'model-step':>11} {'end-to-end':>11} {'wait':>6} "
            f"{'render':>7}  (pairs/s)")
    lines = [head] if header else []
    for r in rows:
        lines.append(f"{r['pipeline']:<7} {r['P']:>2}×{r['K']:<2} {r['data_pairs_per_s']:>10.1f} "
                     f"{r['model_pairs_per_s']:>11.1f} {r['e2e_pairs_per_s']:>11.1f} {r['data_frac']:>6.1%} "
                     f"{r['render_frac']:>7.1%}")
    return "\n".join(lines)
