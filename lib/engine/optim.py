"""Optimisers and learning-rate schedules by name, and per-module learning rates.

:class:`OptimConfig` describes a stage's optimisation: the optimiser (``OPTIMIZERS``: ``sgd``, ``adam``), the
base learning rate with per-module rates (``module_lr``: e.g. VDSR-CA trains at 8.5e-4 while HRNet-ReID-L
trains at 8.5e-3, PS-HRNet Sec. IV-B), the schedule (``SCHEDULES``: ``step`` every ``step_size`` epochs,
``multistep`` at ``milestones``; FTWA: Adam, × 0.2 at epochs 40 and 70) and an optional warm-up.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..core.registry import Registry
from ..core.config import NEUTRAL_DEFAULT

__all__ = ["OptimConfig", "OPTIMIZERS", "SCHEDULES", "lr_factor", "make_optimizer", "module_param_groups"]

#: ``name -> (param_groups, cfg) -> torch.optim.Optimizer``.
OPTIMIZERS = Registry("optimizer")
#: ``name -> (epoch, cfg) -> factor`` after warm-up.
SCHEDULES = Registry("learning-rate schedule")


@dataclass(frozen=True)
class OptimConfig:
    """Optimiser and schedule of one training stage (defaults: PS-HRNet, PROTOCOL §5).

    Attributes:
        optimizer: a name of :data:`OPTIMIZERS`: ``'sgd'`` (paper) | ``'adam'`` (BoT, Luo et al. 2019; FTWA).
        epochs: 70.
        lr: base learning rate, 8.5e-3 (every module not named in ``module_lr``).
        module_lr: learning rate per named module, e.g. ``{'sr': 8.5e-4}`` (paper). The authors' code overwrote
            the VDSR group's rate with the HRNet one every epoch: leave ``sr`` out to reproduce that.
        momentum: 0.9. nesterov: ``False`` (paper: SGD); ``True`` in the authors' code (SGD only).
        weight_decay: 5e-4 (applied to every parameter, biases included, as in both papers' code).
        schedule: a name of :data:`SCHEDULES`: ``'step'`` (× ``gamma`` every ``step_size`` epochs: 0.1 every 30)
            | ``'multistep'`` (× ``gamma`` at each of ``milestones``).
        warmup_epochs, warmup_lr: the authors' code trains the first 5 epochs at 3e-4; the paper does not mention
            it (default 0).
        warmup_mode: ``'constant'`` (authors' code): every group runs at ``warmup_lr / lr`` of its rate during the
            warm-up; ``'linear'`` (BoT): the factor rises linearly from ``warmup_lr / lr`` to 1.
        grad_clip: clip the gradient of every trained parameter to this total L2 norm before each step (0: off,
            both papers). An approximation of VDSR's recipe (Kim et al. 2016: SGD at lr 0.1 with *adjustable*
            clipping, element-wise to ±θ/γ); an option added after the first runs, so it enters a run's identity
            only when set.
        module_weight_decay: weight decay per named module (e.g. ``{'sr': 0}``), else ``weight_decay``. With Adam
            the decay is coupled L2 (``torch.optim.Adam``): on a module whose loss gradient is small (G at the paper's
            initialisation) it drives every weight towards zero at ~``lr`` per step. Identity-neutral when empty.
    """

    optimizer: str = "sgd"
    epochs: int = 70
    lr: float = 8.5e-3
    module_lr: dict[str, float] = field(default_factory=dict)
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 5e-4
    schedule: str = "step"
    step_size: int = 30
    gamma: float = 0.1
    milestones: tuple[int, ...] = ()
    warmup_epochs: int = 0
    warmup_lr: float = 3e-4
    warmup_mode: str = "constant"
    grad_clip: float = field(default=0.0, metadata=NEUTRAL_DEFAULT)
    module_weight_decay: dict[str, float] = field(default_factory=dict, metadata=NEUTRAL_DEFAULT)

    def __post_init__(self) -> None:
        object.__setattr__(self, "milestones", tuple(int(m) for m in self.milestones))
        object.__setattr__(self, "module_lr", {str(k): float(v) for k, v in dict(self.module_lr).items()})
        object.__setattr__(self, "module_weight_decay",
                           {str(k): float(v) for k, v in dict(self.module_weight_decay).items()})
        if self.optimizer not in OPTIMIZERS:
            OPTIMIZERS.get(self.optimizer)  # raises, listing the registered names
        if self.schedule not in SCHEDULES:
            SCHEDULES.get(self.schedule)
        if self.warmup_mode not in ("constant", "linear"):
            raise ValueError(f"warmup_mode: expected 'constant' or 'linear', found {self.warmup_mode!r}")
        if list(self.milestones) != sorted(set(self.milestones)) or any(m < 1 for m in self.milestones):
            raise ValueError(f"milestones: expected increasing epochs ≥ 1, found {list(self.milestones)}")
        if self.schedule == "multistep" and not self.milestones:
            raise ValueError("schedule 'multistep' needs milestones (e.g. [40, 70])")
        if self.milestones and self.schedule != "multistep":
            raise ValueError(f"milestones {list(self.milestones)} are only used by schedule 'multistep' "
                             f"(found schedule {self.schedule!r})")
        for k in ("epochs", "step_size"):
            if getattr(self, k) < 1:
                raise ValueError(f"{k}: expected ≥ 1, found {getattr(self, k)}")
        for k in ("lr", "warmup_lr"):
            if not getattr(self, k) > 0:
                raise ValueError(f"{k}: expected > 0, found {getattr(self, k)}")
        if self.grad_clip < 0:
            raise ValueError(f"grad_clip: expected ≥ 0 (0: off), found {self.grad_clip}")
        neg = {k: v for k, v in self.module_weight_decay.items() if v < 0}
        if neg:
            raise ValueError(f"module_weight_decay: every value must be ≥ 0, found {neg}")
        bad = {k: v for k, v in self.module_lr.items() if not v > 0}
        if bad:
            raise ValueError(f"module_lr: every rate must be > 0, found {bad}")


@SCHEDULES.register("step")
def _step(epoch: int, cfg: OptimConfig) -> float:
    return cfg.gamma ** (epoch // cfg.step_size)


@SCHEDULES.register("multistep")
def _multistep(epoch: int, cfg: OptimConfig) -> float:
    return cfg.gamma ** sum(epoch >= m for m in cfg.milestones)


def lr_factor(epoch: int, cfg: OptimConfig) -> float:
    """Multiplier of the base learning rates at 0-based ``epoch``: warm-up, then the named schedule."""
    if epoch < cfg.warmup_epochs:
        start = cfg.warmup_lr / cfg.lr
        if cfg.warmup_mode == "linear":
            return start + (1.0 - start) * epoch / cfg.warmup_epochs
        return start
    return SCHEDULES.get(cfg.schedule)(epoch, cfg)


@OPTIMIZERS.register("sgd")
def _sgd(groups: list[dict[str, Any]], cfg: OptimConfig) -> torch.optim.Optimizer:
    return torch.optim.SGD(
        groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov and cfg.momentum > 0, weight_decay=cfg.weight_decay
    )


@OPTIMIZERS.register("adam")
def _adam(groups: list[dict[str, Any]], cfg: OptimConfig) -> torch.optim.Optimizer:
    return torch.optim.Adam(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)


def module_param_groups(modules: Mapping[str, nn.Module], cfg: OptimConfig) -> list[dict[str, Any]]:
    """One parameter group per named module, at ``cfg.module_lr[name]`` or ``cfg.lr``.

    Raises:
        ValueError: ``module_lr`` names a module the stage does not train (the message lists those it does).
    """
    for key in ("module_lr", "module_weight_decay"):
        unknown = sorted(set(getattr(cfg, key)) - set(modules))
        if unknown:
            raise ValueError(f"{key}: {unknown} are not trained by this stage; its modules: {', '.join(modules)}")
    return [{"name": n, "params": [p for p in m.parameters() if p.requires_grad], "lr": cfg.module_lr.get(n, cfg.lr),
             "weight_decay": cfg.module_weight_decay.get(n, cfg.weight_decay)} for n, m in modules.items()]


def make_optimizer(groups: list[dict[str, Any]], cfg: OptimConfig) -> torch.optim.Optimizer:
    """``cfg.optimizer`` over named parameter groups ``{'name', 'params', 'lr'}`` (each keeps its ``base_lr``)."""
    for g in groups:
        g["base_lr"] = g["lr"]
    builder: Callable[[list, OptimConfig], torch.optim.Optimizer] = OPTIMIZERS.get(cfg.optimizer)
    return builder(groups, cfg)
