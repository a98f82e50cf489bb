"""The training loop shared by phase 1 (HR teacher) and phase 2 (pseudo-siamese student).

What it does for every run: per-module learning rates with a step schedule and optional warm-up, autocast
(bf16) when asked, a tqdm progress bar, a non-finite loss check naming the epoch, step and loss term, per-
epoch metrics (losses, learning rates, throughput, optional evaluation) to ``history.csv`` /
``history.json``, and a checkpoint every epoch from which a killed run resumes exactly.
"""

from __future__ import annotations

import csv
import io
import math
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from ..utils.io import atomic_write_json, atomic_write_text, jsonable
from .checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from .precision import Precision

__all__ = ["OptimConfig", "OPTIMIZERS", "NonFiniteLossError", "lr_factor", "make_optimizer", "Trainer", "StepFn"]

StepFn = Callable[[dict], tuple[torch.Tensor, dict[str, float], int]]


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN, infinite or larger than ``max_loss``; the message names the epoch, step and term."""


@dataclass(frozen=True)
class OptimConfig:
    """Optimiser and schedule (PROTOCOL §5; paper defaults).

    Attributes:
        optimizer: ``'sgd'`` (paper) or ``'adam'`` (the strong re-ID recipe of BoT, Luo et al. 2019:
            Adam 3.5e-4 with a linear warm-up); ``momentum``/``nesterov`` apply to SGD only.
        epochs: 70.
        lr: HRNet-ReID learning rate, 8.5e-3.
        lr_sr: VDSR-CA learning rate, 8.5e-4 (paper). The authors' code overwrote the VDSR group's rate
            with the HRNet one every epoch: ``sr_lr_follows_reid=True`` reproduces that.
        momentum: 0.9. nesterov: ``False`` (paper: SGD); ``True`` in the authors' code.
        weight_decay: 5e-4.
        step_size, gamma: × ``gamma`` every ``step_size`` epochs (0.1 every 30).
        milestones: when given, × ``gamma`` at each of these epochs instead of every ``step_size``
            (BoT: 40, 70; FTWA: 40, 70 with gamma 0.2).
        warmup_epochs, warmup_lr: the authors' code trains the first 5 epochs at 3e-4; the paper does not
            mention it (default 0).
        warmup_mode: ``'constant'`` (authors' code): every group runs at ``warmup_lr / lr`` of its rate
            during warm-up; ``'linear'`` (BoT): the factor rises linearly from ``warmup_lr / lr`` at epoch 0
            to 1 at epoch ``warmup_epochs``.
    """

    optimizer: str = "sgd"
    epochs: int = 70
    lr: float = 8.5e-3
    lr_sr: float = 8.5e-4
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 5e-4
    step_size: int = 30
    gamma: float = 0.1
    warmup_epochs: int = 0
    warmup_lr: float = 3e-4
    warmup_mode: str = "constant"
    milestones: tuple[int, ...] = ()
    sr_lr_follows_reid: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "milestones", tuple(int(m) for m in self.milestones))
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"OptimConfig.optimizer: expected one of {sorted(OPTIMIZERS)}, found {self.optimizer!r}")
        if self.warmup_mode not in ("constant", "linear"):
            raise ValueError(f"OptimConfig.warmup_mode: expected 'constant' or 'linear', found {self.warmup_mode!r}")
        if list(self.milestones) != sorted(set(self.milestones)) or any(m < 1 for m in self.milestones):
            raise ValueError(f"OptimConfig.milestones: expected increasing epochs ≥ 1, found {list(self.milestones)}")
        for k in ("epochs", "step_size"):
            if getattr(self, k) < 1:
                raise ValueError(f"OptimConfig.{k}: expected ≥ 1, found {getattr(self, k)}")
        for k in ("lr", "lr_sr", "warmup_lr"):
            if not getattr(self, k) > 0:
                raise ValueError(f"OptimConfig.{k}: expected > 0, found {getattr(self, k)}")


def lr_factor(epoch: int, cfg: OptimConfig) -> float:
    """Multiplier of the base learning rates at 0-based ``epoch`` (warm-up, then step decay)."""
    if epoch < cfg.warmup_epochs:
        start = cfg.warmup_lr / cfg.lr
        if cfg.warmup_mode == "linear":
            return start + (1.0 - start) * epoch / cfg.warmup_epochs
        return start
    if cfg.milestones:
        return cfg.gamma ** sum(epoch >= m for m in cfg.milestones)
    return cfg.gamma ** (epoch // cfg.step_size)


def _sgd(groups, cfg: OptimConfig) -> torch.optim.Optimizer:
    return torch.optim.SGD(
        groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov and cfg.momentum > 0, weight_decay=cfg.weight_decay
    )


def _adam(groups, cfg: OptimConfig) -> torch.optim.Optimizer:
    return torch.optim.Adam(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)


#: Optimisers by name (``OptimConfig.optimizer``).
OPTIMIZERS: dict[str, Callable[[list, OptimConfig], torch.optim.Optimizer]] = {"sgd": _sgd, "adam": _adam}


def make_optimizer(groups: list[dict[str, Any]], cfg: OptimConfig) -> torch.optim.Optimizer:
    """``cfg.optimizer`` over named parameter groups ``{'name', 'params', 'lr'}`` (each keeps its ``base_lr``)."""
    for g in groups:
        g["base_lr"] = g["lr"]
    return OPTIMIZERS[cfg.optimizer](groups, cfg)


class Trainer:
    """Runs epochs of ``step_fn`` over a P × K loader, checkpointing after each.

    Args:
        step_fn: ``batch -> (loss, parts, batch_size)``: forward pass and loss (losses in fp32); called
            under the run's autocast. ``parts`` are floats for logging.
        trainable: modules whose state is checkpointed and put in train mode.
        frozen: modules kept in eval mode (the phase-2 teacher); not checkpointed.
        param_groups: ``[{'name', 'params', 'lr'}]`` for the optimiser.
        dataset, sampler: both get ``set_epoch`` so augmentation and order depend on (seed, epoch) only.
        optim: :class:`OptimConfig`. precision: the resolved numerics.
        run_dir: where ``checkpoints/last.pt``, ``history.csv`` and ``history.json`` go.
        run_config: a JSON-able description of the run; resuming a checkpoint whose run_config differs is
            refused (so two different runs never mix).
        eval_fn: optional ``() -> dict`` of metrics, run after the last epoch and every ``eval_every``.
        max_steps_per_epoch: cut epochs short (smoke tests, benchmarks).
        max_loss: a finite loss above this stops the run as diverged (1e6; re-ID losses are O(1–100)), so a
            run whose loss explodes without reaching inf is never recorded as finished.
    """

    def __init__(
        self,
        *,
        step_fn: StepFn,
        trainable: dict[str, nn.Module],
        param_groups: list[dict[str, Any]],
        dataset,
        sampler,
        optim: OptimConfig,
        precision: Precision,
        run_dir: str | Path,
        run_config: dict[str, Any],
        frozen: dict[str, nn.Module] | None = None,
        eval_fn: Callable[[], dict[str, float]] | None = None,
        eval_every: int = 0,
        num_workers: int = 0,
        max_steps_per_epoch: int | None = None,
        progress: bool = True,
        desc: str = "train",
        max_loss: float = 1e6,
    ) -> None:
        self.max_loss = float(max_loss)
        self.step_fn, self.trainable, self.frozen = step_fn, trainable, frozen or {}
        self.optimizer = make_optimizer(param_groups, optim)
        self.dataset, self.sampler, self.optim, self.precision = dataset, sampler, optim, precision
        self.run_dir = Path(run_dir)
        self.run_config = dict(run_config) | {"optim": asdict(optim)}
        self.eval_fn, self.eval_every = eval_fn, eval_every
        self.num_workers, self.max_steps, self.progress, self.desc = num_workers, max_steps_per_epoch, progress, desc
        self.history: list[dict[str, Any]] = []
        self.start_epoch = 0

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
        save_checkpoint(
            self.checkpoint_path,
            {
                "epoch": epoch,
                "modules": {n: m.state_dict() for n, m in self.trainable.items()},
                "optimizer": self.optimizer.state_dict(),
                "history": self.history,
                "run_config": self.run_config,
                "rng": rng_state(),
            },
        )

    def _write_history(self) -> None:
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
        reid_lr = None
        for g in self.optimizer.param_groups:
            g["lr"] = g["base_lr"] * f
            if g.get("name") != "sr":
                reid_lr = g["lr"]
        if self.optim.sr_lr_follows_reid and reid_lr is not None:
            for g in self.optimizer.param_groups:
                if g.get("name") == "sr":
                    g["lr"] = reid_lr
        return {f"lr_{g.get('name', i)}": g["lr"] for i, g in enumerate(self.optimizer.param_groups)}

    def _check_finite(self, loss: torch.Tensor, parts: dict[str, float], epoch: int, step: int) -> None:
        value = float(loss.detach())
        if math.isfinite(value) and abs(value) <= self.max_loss:
            return
        last = self.checkpoint_path if self.checkpoint_path.exists() else "none"
        if math.isfinite(value):
            big = {k: v for k, v in parts.items() if abs(v) > self.max_loss} or {"total": value}
            raise NonFiniteLossError(
                f"{self.desc}: the loss diverged at epoch {epoch + 1}, step {step + 1}: "
                f"{', '.join(f'{k}={v:.3g}' for k, v in big.items())} exceeds max_loss={self.max_loss:g}. "
                f"The last good checkpoint is {last}; lower the learning rate (or raise max_loss if such values are expected)."
            )
        bad = {k: v for k, v in parts.items() if not math.isfinite(v)} or {"total": value}
        terms = ", ".join(f"{k}={v}" for k, v in bad.items())
        raise NonFiniteLossError(
            f"{self.desc}: non-finite loss at epoch {epoch + 1}, step {step + 1}: {terms}. "
            f"The last good checkpoint is {last}; lower the learning rate or try PRECISION fp32."
        )

    def fit(self) -> list[dict[str, Any]]:
        """Train from the last checkpoint (if any) to ``optim.epochs``; returns the history."""
        from tqdm.auto import tqdm

        self.try_resume()
        for m in self.frozen.values():
            m.eval()
        for epoch in range(self.start_epoch, self.optim.epochs):
            lrs = self._set_lr(epoch)
            for obj in (self.dataset, self.sampler):
                if hasattr(obj, "set_epoch"):
                    obj.set_epoch(epoch)
            loader = DataLoader(
                self.dataset,
                batch_size=self.sampler.batch_size,
                sampler=self.sampler,
                drop_last=True,
                num_workers=self.num_workers,
                pin_memory=self.precision.device.type == "cuda",
            )
            for m in self.trainable.values():
                m.train()
            sums: dict[str, float] = defaultdict(float)
            seen, steps, t0 = 0, 0, time.perf_counter()
            total = len(loader) if self.max_steps is None else min(len(loader), self.max_steps)
            if total == 0:
                raise RuntimeError(
                    f"{self.desc}: epoch {epoch + 1} has no batch: {len(self.dataset)} samples, batch size "
                    f"{self.sampler.batch_size} (P×K); lower P or K"
                )
            bar = tqdm(loader, total=total, desc=f"{self.desc} {epoch + 1}/{self.optim.epochs}", disable=not self.progress,
                       mininterval=2.0, leave=False)
            for step, batch in enumerate(bar):
                if step >= total:
                    break
                with self.precision.autocast():
                    loss, parts, bs = self.step_fn(batch)
                self._check_finite(loss, parts, epoch, step)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
                for k, v in parts.items():
                    sums[k] += v * bs
                seen += bs
                steps += 1
                bar.set_postfix(loss=f"{parts.get('total', float(loss.detach())):.3f}", refresh=False)
            bar.close()
            if self.precision.device.type == "cuda":
                torch.cuda.synchronize()
            dt = time.perf_counter() - t0
            rec: dict[str, Any] = {"epoch": epoch + 1, **lrs}
            rec.update({f"loss_{k}": v / max(seen, 1) for k, v in sums.items()})
            rec.update({"steps": steps, "samples": seen, "time_s": round(dt, 3), "samples_per_s": round(seen / dt, 2)})
            if self.precision.device.type == "cuda":
                rec["gpu_peak_mib"] = round(torch.cuda.max_memory_allocated(self.precision.device) / 2**20)
            last = epoch + 1 == self.optim.epochs
            if self.eval_fn is not None and (last or (self.eval_every and (epoch + 1) % self.eval_every == 0)):
                rec.update({f"eval_{k}": v for k, v in self.eval_fn().items()})
            self.history.append(rec)
            self._save(epoch)  # the checkpoint first: the history never runs ahead of it
            self._write_history()
        return self.history

