"""The generic training loop: no method specifics, one overridable step (torchreid's engine design).

A method hands the trainer its trained modules, a dataset with a P × K sampler, an :class:`OptimConfig` and a
*step*: ``batch -> (loss, parts, batch_size)`` (forward pass and loss). The trainer does the rest for every
method alike: optimiser and schedule by name with per-module learning rates, autocast, DataLoader workers and
pinned memory on CUDA, optional ``torch.compile``, DDP under ``torchrun``, a tqdm bar, per-epoch metrics
(losses, learning rates, throughput, data-loading share, GPU peak memory) in ``history.csv`` / ``history.json``,
and a checkpoint every ``checkpoint_every`` epochs (and after the last) from which a killed run resumes
bit-identically.

GPU-friendly: the loss terms stay on the device; they are summed there and brought to the host (one
synchronisation) only every ``sync_every`` steps, where the finite-loss check runs too (on the CPU a
synchronisation is free, so it runs every step and names the exact step).
"""

from __future__ import annotations

import csv
import io
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from ..utils.io import atomic_write_json, atomic_write_text, jsonable
from . import distributed as D
from .checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from .optim import OPTIMIZERS, OptimConfig, lr_factor, make_optimizer, module_param_groups
from .precision import Precision

__all__ = [
    "OptimConfig", "OPTIMIZERS", "NonFiniteLossError", "lr_factor", "make_optimizer", "module_param_groups", "Trainer",
    "StepFn", "default_num_workers", "usable_cpus",
]

StepFn = Callable[[dict], tuple[torch.Tensor, Mapping[str, Any], int]]


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN, infinite or larger than ``max_loss``; the message names the epoch, step(s) and term."""


def default_num_workers(device: torch.device) -> int:
    """DataLoader workers when ``num_workers`` is -1 (auto): up to 8 on CUDA (decoding must keep up with the GPU),
    one fewer than the :func:`usable_cpus` per process; 0 on the CPU (the workers would take cores from the model;
    decoding is a few % of a CPU step)."""
    if device.type != "cuda":
        return 0
    return max(1, min(8, usable_cpus() // max(1, D.world_size()) - 1))


def usable_cpus() -> int:
    """The CPUs this process may run on: its affinity mask (``os.sched_getaffinity``: what ``taskset``, cgroups and
    SLURM's binding leave), capped by SLURM's ``SLURM_CPUS_PER_TASK`` when set — not ``os.cpu_count()``, the
    machine's total."""
    import os

    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS, Windows
        n = os.cpu_count() or 1
    slurm = os.environ.get("SLURM_CPUS_PER_TASK", "")
    if slurm.isdigit() and int(slurm) > 0:
        n = min(n, int(slurm))
    return max(1, n)


class Trainer:
    """Runs epochs of a step over a P × K loader, checkpointing after each.

    Args:
        trainable: modules whose state is trained and checkpointed (put in train mode); one parameter group each,
            at ``optim.module_lr[name]`` or ``optim.lr`` (or pass ``param_groups``).
        make_step: ``modules -> step``; receives the modules as they run (compiled / DDP-wrapped) plus ``frozen``.
        step_fn: alternatively a ready step (then neither ``compile`` nor DDP can wrap the modules).
        frozen: modules kept in eval mode (a teacher); not checkpointed.
        dataset, sampler: both get ``set_epoch``, so augmentation and order depend on (seed, epoch) only.
        optim: :class:`OptimConfig`. precision: the resolved numerics.
        run_dir: where ``checkpoints/last.pt``, ``history.csv`` and ``history.json`` go.
        run_config: a JSON-able description of the run; resuming a checkpoint whose run_config differs is refused.
        num_workers: DataLoader workers (-1: :func:`default_num_workers`). pin_memory: ``None`` = on CUDA.
        persistent_workers: with workers, one DataLoader (and its worker processes) serves every epoch of the run;
            the dataset's and sampler's ``set_epoch`` still reach every epoch (the dataset keeps its epoch in shared
            memory), so the batches equal those of a loader started anew each epoch.
        sync_every: steps between host synchronisations (finite check, progress bar); 0 = 1 on the CPU, 25 on CUDA.
        compile: ``torch.compile`` the trained and the frozen modules: ``True`` / ``'default'``, ``'reduce-overhead'``
            (CUDA graphs), ``'max-autotune'``; checkpoints keep the plain modules' keys. The first step (compilation)
            is timed apart: ``first_step_s`` in the history of the run's first epoch.
        cudnn_benchmark: ``torch.backends.cudnn.benchmark`` while the run trains (``None``: on CUDA).
        max_steps_per_epoch: cut epochs short (smoke tests, benchmarks).
        checkpoint_every: epochs between checkpoints (1: every epoch); the last epoch always writes one.
        max_loss: a finite loss above this stops the run as diverged (1e6).
        eval_fn, eval_every: optional ``() -> dict`` run after the last epoch and every ``eval_every`` epochs.
        monitor_fn: optional ``() -> dict`` run after every epoch; its values become history columns as they are
            (e.g. G's restoration PSNR). It must only observe: no training state, no random numbers.
    """

    def __init__(
        self,
        *,
        trainable: dict[str, nn.Module],
        dataset,
        sampler,
        optim: OptimConfig,
        precision: Precision,
        run_dir: str | Path,
        run_config: dict[str, Any],
        make_step: Callable[[dict[str, nn.Module]], StepFn] | None = None,
        step_fn: StepFn | None = None,
        frozen: dict[str, nn.Module] | None = None,
        param_groups: list[dict[str, Any]] | None = None,
        eval_fn: Callable[[], dict[str, float]] | None = None,
        eval_every: int = 0,
        monitor_fn: Callable[[], dict[str, float]] | None = None,
        num_workers: int = 0,
        persistent_workers: bool = True,
        pin_memory: bool | None = None,
        sync_every: int = 0,
        compile: bool | str = False,
        cudnn_benchmark: bool | None = None,
        max_steps_per_epoch: int | None = None,
        progress: bool = True,
        desc: str = "train",
        max_loss: float = 1e6,
        checkpoint_every: int = 1,
    ) -> None:
        if checkpoint_every < 1:
            raise ValueError(f"Trainer: checkpoint_every must be ≥ 1, found {checkpoint_every}")
        self.checkpoint_every = int(checkpoint_every)
        if (make_step is None) == (step_fn is None):
            raise TypeError("Trainer: give exactly one of make_step and step_fn")
        self.trainable, self.frozen = trainable, frozen or {}
        self.optim, self.precision = optim, precision
        self.optimizer = make_optimizer(param_groups or module_param_groups(trainable, optim), optim)
        self.dataset, self.sampler = dataset, sampler
        self.run_dir = Path(run_dir)
        self.run_config = dict(run_config) | {"optim": jsonable(asdict(optim))}
        self.eval_fn, self.eval_every, self.monitor_fn = eval_fn, eval_every, monitor_fn
        dev = precision.device
        self.num_workers = default_num_workers(dev) if num_workers < 0 else num_workers
        self.persistent_workers = bool(persistent_workers) and self.num_workers > 0
        self._kept_loader: DataLoader | None = None
        self.pin_memory = dev.type == "cuda" if pin_memory is None else pin_memory
        self.sync_every = sync_every or (25 if dev.type == "cuda" else 1)
        self.max_steps, self.progress, self.desc, self.max_loss = max_steps_per_epoch, progress, desc, float(max_loss)
        self.history: list[dict[str, Any]] = []
        self.start_epoch = 0
        running = dict(trainable)
        self.compile = compile
        self.cudnn_benchmark = dev.type == "cuda" if cudnn_benchmark is None else bool(cudnn_benchmark)
        mode = None if compile in (False, True) else compile
        frozen_running = dict(self.frozen)
        if compile or D.is_distributed():
            if step_fn is not None:
                raise TypeError("Trainer: compile / DDP need make_step (the step must call the wrapped modules)")
            if compile:  # the frozen teacher too: its forward is a third of phase 2's work
                frozen_running = {n: torch.compile(m, mode=mode) for n, m in self.frozen.items()}
            for n, m in trainable.items():
                if compile:
                    m = torch.compile(m, mode=mode)
                if D.is_distributed() and any(p.requires_grad for p in m.parameters()):
                    ids = [dev.index] if dev.type == "cuda" else None
                    # a loss term can leave parameters unused (e.g. a variant without CE leaves the classifier idle)
                    m = nn.parallel.DistributedDataParallel(m, device_ids=ids, find_unused_parameters=True)
                running[n] = m
        self.step_fn = step_fn or make_step({**running, **frozen_running})

    @property
    def checkpoint_path(self) -> Path:
        return self.run_dir / "checkpoints" / "last.pt"

    # ----------------------------------------------------------------- resume
    def try_resume(self) -> bool:
        """Load ``checkpoints/last.pt`` if present; returns whether a run was resumed."""
        if not self.checkpoint_path.is_file():
            return False
        st = load_checkpoint(self.checkpoint_path)
        if jsonable(st["run_config"]) != jsonable(self.run_config):
            raise RuntimeError(
                f"{self.checkpoint_path} belongs to a run with a different configuration; use another run "
                f"directory or delete {self.run_dir} to start over.\n  checkpoint: {st['run_config']}\n  now:        {self.run_config}"
            )
        for name, m in self.trainable.items():
            m.load_state_dict(st["modules"][name])
        self.optimizer.load_state_dict(st["optimizer"])
        self.history = list(st["history"])
        self.start_epoch = int(st["epoch"]) + 1
        set_rng_state(st["rng"])
        return True

    def _save(self, epoch: int) -> None:
        if not D.is_main():
            return
        save_checkpoint(self.checkpoint_path, {
            "epoch": epoch, "modules": {n: m.state_dict() for n, m in self.trainable.items()},
            "optimizer": self.optimizer.state_dict(), "history": jsonable(self.history), "run_config": jsonable(self.run_config),
            "rng": rng_state(),
        })

    def _monitor(self) -> dict:
        """``monitor_fn()`` with torch's random state kept (it only observes); a failure is reported once and the run
        goes on without the monitor's columns — never lost training."""
        devices = [self.precision.device] if self.precision.device.type == "cuda" else []
        try:
            with torch.random.fork_rng(devices=devices):
                return dict(self.monitor_fn())
        except Exception as e:  # an observer must not end a training run
            from ..utils.progress import report

            if not getattr(self, "_monitor_failed", False):
                report(f"{self.desc}: the per-epoch monitor failed ({type(e).__name__}: {e}); training goes on without it")
            self._monitor_failed = True
            return {}

    def _write_history(self) -> None:
        if not D.is_main():
            return
        atomic_write_json(self.run_dir / "history.json", self.history)
        keys: list[str] = []
        for rec in self.history:
            keys += [k for k in rec if k not in keys]
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=keys)
        w.writeheader()
        w.writerows(self.history)
        atomic_write_text(self.run_dir / "history.csv", buf.getvalue())

    # ------------------------------------------------------------------ train
    def _set_lr(self, epoch: int) -> dict[str, float]:
        f = lr_factor(epoch, self.optim)
        for g in self.optimizer.param_groups:
            g["lr"] = g["base_lr"] * f
        return {f"lr_{g.get('name', i)}": g["lr"] for i, g in enumerate(self.optimizer.param_groups)}

    def _check(self, worst: torch.Tensor, sums: dict[str, torch.Tensor], epoch: int, first: int, last: int) -> float:
        """One host synchronisation: raise if a loss in steps ``first..last`` was non-finite or above max_loss."""
        if D.is_distributed():  # every rank stops together (NaN becomes inf: MAX need not propagate NaN)
            worst = torch.nan_to_num(worst, nan=math.inf)
            torch.distributed.all_reduce(worst, op=torch.distributed.ReduceOp.MAX)
        value = float(worst)
        if math.isfinite(value) and value <= self.max_loss:
            return value
        where = f"step {last + 1}" if first == last else f"steps {first + 1}–{last + 1} (checked every {self.sync_every})"
        ckpt = self.checkpoint_path if self.checkpoint_path.exists() else "none"
        if math.isfinite(value):
            terms = {k: float(v) for k, v in sums.items() if k != "total"}
            big = sorted(terms, key=lambda k: -abs(terms[k]))[:3]
            raise NonFiniteLossError(
                f"{self.desc}: the loss diverged at epoch {epoch + 1}, {where}: {value:.3g} exceeds max_loss="
                f"{self.max_loss:g} (largest terms this epoch: {', '.join(big) or 'total'}). The last good checkpoint is "
                f"{ckpt}; lower the learning rate (or raise max_loss if such values are expected).")
        bad = [k for k, v in sums.items() if not math.isfinite(float(v))] or ["total"]
        raise NonFiniteLossError(
            f"{self.desc}: non-finite loss at epoch {epoch + 1}, {where}: term(s) {', '.join(bad)}. "
            f"The last good checkpoint is {ckpt}; lower the learning rate or try precision fp32.")

    def _loader(self, epoch: int) -> DataLoader:
        for obj in (self.dataset, self.sampler):
            if hasattr(obj, "set_epoch"):
                obj.set_epoch(epoch)
        if self._kept_loader is not None:  # persistent workers: the sampler is iterated anew in this process
            # a new loader iterator takes one draw of the global generator (its workers' base seed): take it
            # here too, so the random stream (dropout …) and a resumed run stay those of a loader made anew
            torch.empty((), dtype=torch.int64).random_()
            return self._kept_loader
        bs = self.sampler.batch_size
        # a dataset of the tensor data path (lib.data.tensor_pipeline) batches raw items its own way
        common = dict(num_workers=self.num_workers, pin_memory=self.pin_memory,
                      collate_fn=getattr(self.dataset, "collate_fn", None),
                      persistent_workers=self.persistent_workers, prefetch_factor=4 if self.num_workers else None)
        if D.is_distributed():
            loader = DataLoader(self.dataset, batch_sampler=D.ShardedBatchSampler(self.sampler, bs, D.rank(),
                                                                                   D.world_size()), **common)
        else:
            loader = DataLoader(self.dataset, batch_size=bs, sampler=self.sampler, drop_last=True, **common)
        if self.persistent_workers:
            self._kept_loader = loader
        return loader

    def fit(self) -> list[dict[str, Any]]:
        """Train from the last checkpoint (if any) to ``optim.epochs``; returns the history."""
        bench = torch.backends.cudnn.benchmark
        torch.backends.cudnn.benchmark = self.cudnn_benchmark
        try:
            return self._fit()
        finally:  # the persistent workers end with the run, or its failure (a kept traceback must not keep them)
            self.close()
            torch.backends.cudnn.benchmark = bench

    def close(self) -> None:
        """Shut down the kept DataLoader's worker processes (persistent workers), if any; a later epoch starts new
        ones. :meth:`fit` calls it when it ends, however it ends."""
        it = getattr(self._kept_loader, "_iterator", None)
        if it is not None and hasattr(it, "_shutdown_workers"):
            it._shutdown_workers()
        self._kept_loader = None

    def _fit(self) -> list[dict[str, Any]]:
        from tqdm.auto import tqdm

        from ..utils.progress import bars_off, epoch_line, report

        if self.try_resume():
            report(f"{self.desc}: resumed from {self.checkpoint_path} after epoch {self.start_epoch}")
        for m in self.frozen.values():
            m.eval()
        dev = self.precision.device
        # the tensor data path makes a batch's images on the device (lib.data.tensor_pipeline); the PIL path's are made
        render = getattr(self.dataset, "render", None) if getattr(self.dataset, "pipeline", "pil") != "pil" else None
        for epoch in range(self.start_epoch, self.optim.epochs):
            lrs = self._set_lr(epoch)
            loader = self._loader(epoch)
            for m in self.trainable.values():
                m.train()
            total = len(loader) if self.max_steps is None else min(len(loader), self.max_steps)
            if total == 0:
                raise RuntimeError(
                    f"{self.desc}: epoch {epoch + 1} has no batch: {len(self.dataset)} samples, batch size "
                    f"{self.sampler.batch_size} (P×K) × {D.world_size()} rank(s); lower P or K")
            if dev.type == "cuda":
                torch.cuda.reset_peak_memory_stats(dev)
            sums: dict[str, torch.Tensor] = {}
            worst = torch.zeros((), device=dev)
            seen, steps, first, data_s, render_s, first_step_s = 0, 0, 0, 0.0, 0.0, None
            bar = tqdm(total=total, desc=f"{self.desc} {epoch + 1}/{self.optim.epochs}", disable=bars_off(self.progress),
                       mininterval=2.0, leave=False)
            t0 = t_wait = time.perf_counter()
            for step, batch in enumerate(loader):
                if step >= total:
                    break
                data_s += time.perf_counter() - t_wait
                t_step = time.perf_counter()
                if render is not None:
                    t_render = time.perf_counter()
                    batch = render(batch, dev)
                    render_s += time.perf_counter() - t_render
                with self.precision.autocast():
                    loss, parts, bs = self.step_fn(batch)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if self.optim.grad_clip > 0:  # OptimConfig.grad_clip: total L2 norm over every trained parameter
                    torch.nn.utils.clip_grad_norm_(
                        [p for g in self.optimizer.param_groups for p in g["params"]], self.optim.grad_clip)
                self.optimizer.step()
                if self.compile and first_step_s is None and epoch == self.start_epoch:  # compilation happens here
                    if dev.type == "cuda":
                        torch.cuda.synchronize(dev)
                    first_step_s = time.perf_counter() - t_step
                worst = torch.maximum(worst, loss.detach().float().abs())  # NaN propagates
                for k, v in parts.items():
                    v = v.detach().float() if torch.is_tensor(v) else torch.tensor(float(v), device=dev)
                    sums[k] = sums[k] + v * bs if k in sums else v * bs
                seen += bs
                steps += 1
                if steps % self.sync_every == 0 or steps == total:
                    value = self._check(worst, sums, epoch, first, step)
                    bar.update(step + 1 - bar.n)
                    bar.set_postfix(loss=f"{value:.3f}", refresh=False)
                    worst.zero_()
                    first = step + 1
                t_wait = time.perf_counter()
            bar.close()
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            dt = time.perf_counter() - t0
            world = D.world_size()
            rec: dict[str, Any] = {"epoch": epoch + 1, **lrs}
            rec.update({f"loss_{k}": v / max(seen, 1) for k, v in zip(sums, torch.stack(list(sums.values())).tolist())}
                       if sums else {})
            rec.update({"steps": steps, "samples": seen * world, "time_s": round(dt, 3),
                        "samples_per_s": round(seen * world / dt, 2), "data_frac": round(data_s / dt, 3)})
            if render is not None:  # the tensor path's device-side image making (on CUDA: its launch time)
                rec["render_frac"] = round(render_s / dt, 3)
            if first_step_s is not None:  # compile: the first step compiles; its time is reported apart
                rec["first_step_s"] = round(first_step_s, 3)
            if dev.type == "cuda":
                rec["gpu_peak_mib"] = round(torch.cuda.max_memory_allocated(dev) / 2**20)
            if self.monitor_fn is not None and D.is_main():
                rec.update(self._monitor())
            last = epoch + 1 == self.optim.epochs
            if self.eval_fn is not None and D.is_main() and (last or (self.eval_every and (epoch + 1) % self.eval_every == 0)):
                rec.update({f"eval_{k}": v for k, v in self.eval_fn().items()})
            self.history.append(rec)
            if last or (epoch + 1) % self.checkpoint_every == 0:
                self._save(epoch)  # before the history files; a resume takes the history from the checkpoint
            if D.is_main():
                times = [h.get("time_s", dt) for h in self.history[-5:]]
                line = epoch_line(self.desc, epoch + 1, self.optim.epochs, rec.get("loss_total"), dt, sum(times) / len(times))
                if "g_psnr" in rec and "input_psnr" in rec:  # whether G restores at all, visible while it trains
                    line += f"; G {rec['g_psnr']:.2f} dB ({rec['g_psnr'] - rec['input_psnr']:+.2f} over its input)"
                report(line)
            self._write_history()
            D.barrier()
        return self.history
