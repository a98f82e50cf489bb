"""FTWA's losses: the SWA classification loss (FTWA Eq. (5)), the SWA triplet loss (FTWA Eqs. (6)–(7)), L_RAFT
(FTWA Eq. (2)), composed as ``L = λ₁ L_Cls + λ₂ L_Tri + λ₃ L_RAFT`` (FTWA Eq. (8): 3, 1, 0.1) by the shared
:class:`LossComposer` with the terms ``swa_cls``, ``swa_tri`` and ``raft`` registered here.

Inputs (a :class:`~lib.models.ftwa.FTWAOutput` in ``LossInputs.out``): the vectors, weights and identity scores of
the HR images (``hr``, with ``lr_p`` from their down-sampled versions) and of the LR images (``lr``, with ``hr_p``
through T); ``LossInputs.targets`` holds the HR images' labels first, then the LR images'.

Readings of what the paper leaves open (options of :class:`SWALossConfig`, README deviations table):

* FTWA Eq. (5) is per pair: for an HR image ``(w_HR·CE(f_HR) + w'_LR·CE(f'_LR)) / (w_HR + w'_LR)``, for an LR image
  ``(w_LR·CE(f_LR) + w'_HR·CE(f'_HR)) / (w_LR + w'_HR)``; each averaged over its images, the two summed. With
  equal weights it is the mean of each CE pair. A batch without LR (or HR) images has only the other part.
* FTWA Eq. (7)'s weights multiply batch-level triplet losses, so they are batch means: ``w_HR·w'_HR`` = mean of W_HR
  over the HR images × mean of W_HR over the LR images' transformed vectors, etc.; L^Tri (FTWA Eq. (6)) is the
  batch-hard triplet loss (Hermans et al. 2017) over the union of the two vector sets, mean over anchors, margin 0.3,
  as in the re-ID code bases the paper's settings (weight-decay bias factor, linear warm-up scheduler) come from.
* ``weight_grad``: ``'full'`` (the equations as written: the gradient reaches the evaluators through numerators and
  denominators, so a weight grows where its loss is the smaller of its pair — the only reading in which the
  evaluators learn a *relative* quality) or ``'detach_denominator'`` (the normalising sums are constants: each weight's
  gradient is its loss over the sum, always positive, so every weight only shrinks — kept to show that, not advised).
* ``raft_detach_target``: L_RAFT's target F_HR is a constant (``True``) or also trained (``False``, as written).
* ``weight_floor`` (0, as written): each normalised weight of FTWA Eqs. (5) and (7) is at least this
  (``floor + (1 − 2·floor) · w_a / (w_a + w_b)``). As written, the evaluators can drive one stream's weights to ~0
  within two epochs, after which that stream gets no identity gradient (README, FTWA); a floor keeps both streams
  learning — an option, our addition, to be chosen on validation identities.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..core.config import NEUTRAL_DEFAULT
from .compose import LOSS_TERMS, LossConfig, LossInputs
from .triplet import batch_hard_triplet_loss

__all__ = ["SWALossConfig", "swa_classification_loss", "swa_triplet_loss", "raft_loss", "WEIGHT_GRADS", "floored"]

WEIGHT_GRADS = ("full", "detach_denominator")


@dataclass(frozen=True)
class SWALossConfig(LossConfig):
    """FTWA's loss settings: margin 0.3 and plain softmax cross entropy (ε = 0) by default, plus the readings above."""

    margin: float = 0.3
    label_smooth: float = 0.0
    weight_grad: str = "full"
    raft_detach_target: bool = False
    weight_floor: float = field(default=0.0, metadata=NEUTRAL_DEFAULT)  # added after the first runs: 0 stays out of identities

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.weight_grad not in WEIGHT_GRADS:
            raise ValueError(f"weight_grad: expected one of {WEIGHT_GRADS}, found {self.weight_grad!r}")
        if not 0.0 <= self.weight_floor < 0.5:
            raise ValueError(f"weight_floor: expected a number in [0, 0.5), found {self.weight_floor!r}")


def floored(p, floor: float):
    """A normalised weight ``p`` raised to at least ``floor`` (``floor + (1 − 2·floor)·p``; the pair's two weights
    still sum to 1) — ``loss.weight_floor`` in training, ``test.weight_floor`` in FTWA's ``swa`` matching."""
    return floor + (1 - 2 * floor) * p if floor else p


def _normalised(la: torch.Tensor, lb: torch.Tensor, detach: bool,
                floor: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """``(w_a, w_b) / (w_a + w_b)`` from log-weights, in log space (never 0 / 0; ``detach``: the sum is a constant),
    each raised to at least ``floor`` (``floor + (1 − 2·floor)·p``)."""
    den = torch.logaddexp(la, lb)
    den = den.detach() if detach else den
    pa, pb = torch.exp(la - den), torch.exp(lb - den)
    return floored(pa, floor), floored(pb, floor)


def _pair(loss_a: torch.Tensor, la: torch.Tensor, loss_b: torch.Tensor, lb: torch.Tensor, detach: bool,
          floor: float = 0.0) -> torch.Tensor:
    pa, pb = _normalised(la, lb, detach, floor)
    return (pa * loss_a + pb * loss_b).mean()


def _logs(w: dict[str, torch.Tensor], log_w: bool) -> dict[str, torch.Tensor]:
    return w if log_w else {k: torch.log(t) for k, t in w.items()}


def swa_classification_loss(ce: dict[str, torch.Tensor], w: dict[str, torch.Tensor],
                            weight_grad: str = "full", log_w: bool = False, floor: float = 0.0) -> torch.Tensor:
    """FTWA Eq. (5) from per-sample cross entropies ``ce`` and weights ``w`` (keys ``hr``, ``lr_p``: one entry per HR
    image; ``lr``, ``hr_p``: per LR image; ``log_w``: ``w`` holds log-weights). A group without images contributes
    nothing. The normalised weights are computed in log space — the same value as FTWA Eq. (5), finite also where the
    weights underflow (a quality evaluator driven to saturation)."""
    detach = weight_grad == "detach_denominator"
    w = _logs(w, log_w)
    parts = []
    if ce["hr"].numel():
        parts.append(_pair(ce["hr"], w["hr"], ce["lr_p"], w["lr_p"], detach, floor))
    if ce["lr"].numel():
        parts.append(_pair(ce["lr"], w["lr"], ce["hr_p"], w["hr_p"], detach, floor))
    if not parts:
        raise ValueError("swa_classification_loss: the batch has neither HR nor LR images")
    return torch.stack(parts).sum()


def swa_triplet_loss(v: dict[str, torch.Tensor], w: dict[str, torch.Tensor], y_hr: torch.Tensor, y_lr: torch.Tensor,
                     margin: float = 0.3, weight_grad: str = "full", normalize: bool = False,
                     no_positive: str = "skip", log_w: bool = False, floor: float = 0.0) -> torch.Tensor:
    """FTWA Eq. (7): ``(a·L^Tri(v_HR ∪ v'_HR) + b·L^Tri(v_LR ∪ v'_LR)) / (a + b)`` with ``a = w̄_HR·w̄'_HR``,
    ``b = w̄_LR·w̄'_LR`` (batch means; a missing group's mean counts as 1), normalised in log space."""
    w = _logs(w, log_w)

    def mean(x: torch.Tensor) -> torch.Tensor:  # log of the batch mean of the weights
        return torch.logsumexp(x, 0) - math.log(x.numel()) if x.numel() else x.new_zeros(())

    def tri(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return batch_hard_triplet_loss(torch.cat([a, b]), torch.cat([y_hr, y_lr]), margin=margin, normalize=normalize,
                                       no_positive=no_positive)
    pa, pb = _normalised(mean(w["hr"]) + mean(w["hr_p"]), mean(w["lr"]) + mean(w["lr_p"]),
                         weight_grad == "detach_denominator", floor)
    return pa * tri(v["hr"], v["hr_p"]) + pb * tri(v["lr_p"], v["lr"])


def raft_loss(f_hr: torch.Tensor, t_lr_p: torch.Tensor, detach_target: bool = False) -> torch.Tensor:
    """FTWA Eq. (2): ``‖F_HR − T(F'_LR)‖₁``, the mean absolute difference (``nn.L1Loss``)."""
    return F.l1_loss(t_lr_p.float(), (f_hr.detach() if detach_target else f_hr).float())


def _split_targets(x: LossInputs) -> tuple[torch.Tensor, torch.Tensor]:
    n_h = x.out.v["hr"].shape[0]
    return x.targets[:n_h], x.targets[n_h:]


@LOSS_TERMS.register("swa_cls")
class SWAClassificationTerm(nn.Module):
    """``L^Cls_SWA`` (FTWA Eq. (5)) on C_HR / C_LR's scores."""

    def __init__(self, cfg: SWALossConfig) -> None:
        super().__init__()
        self.epsilon, self.weight_grad, self.floor = cfg.label_smooth, cfg.weight_grad, cfg.weight_floor

    def forward(self, x: LossInputs):
        y_hr, y_lr = _split_targets(x)
        y = {"hr": y_hr, "lr_p": y_hr, "lr": y_lr, "hr_p": y_lr}
        ce = {k: F.cross_entropy(x.out.logits[k].float(), y[k], reduction="none", label_smoothing=self.epsilon)
              for k in y}
        lw = {k: t.float() for k, t in x.out.log_w.items()}
        loss = swa_classification_loss(ce, lw, self.weight_grad, log_w=True, floor=self.floor)
        # its value at a uniform prediction: ln C for each image group the batch has (lib.core.learning)
        groups = int(y_hr.numel() > 0) + int(y_lr.numel() > 0)
        chance = loss.new_tensor(groups * math.log(max(t.shape[-1] for t in x.out.logits.values())))
        parts = {"cls": loss.detach(), "cls_chance": chance} | {f"w_{k}": t.detach().exp().mean()
                                                               for k, t in lw.items() if t.numel()}
        # each classifier on each image group, unweighted: a stream whose weight collapsed is seen learning nothing
        # even while the weighted sum falls (C_HR on F_HR: ce_hr, on T(F_LR): ce_hr_p; C_LR on F_LR: ce_lr, on F'_LR: ce_lr_p)
        parts |= {f"ce_{k}": v.detach().mean() for k, v in ce.items() if v.numel()}
        return loss, parts


@LOSS_TERMS.register("swa_tri")
class SWATripletTerm(nn.Module):
    """``L^Tri_SWA`` (FTWA Eq. (7))."""

    def __init__(self, cfg: SWALossConfig) -> None:
        super().__init__()
        self.margin, self.weight_grad, self.floor = cfg.margin, cfg.weight_grad, cfg.weight_floor
        self.normalize, self.no_positive = cfg.triplet_normalize, cfg.triplet_no_positive

    def forward(self, x: LossInputs):
        y_hr, y_lr = _split_targets(x)
        loss = swa_triplet_loss({k: t.float() for k, t in x.out.v.items()}, {k: t.float() for k, t in x.out.log_w.items()},
                                y_hr, y_lr, self.margin, self.weight_grad, self.normalize, self.no_positive, log_w=True,
                                floor=self.floor)
        return loss, {"tri": loss.detach()}


@LOSS_TERMS.register("raft")
class RAFTTerm(nn.Module):
    """``L_RAFT`` (FTWA Eq. (2)) on the HR images and their down-sampled versions."""

    def __init__(self, cfg: SWALossConfig) -> None:
        super().__init__()
        self.detach_target = cfg.raft_detach_target

    def forward(self, x: LossInputs):
        if x.out.f_hr.shape[0] == 0:
            return None, {}
        loss = raft_loss(x.out.f_hr, x.out.t_lr_p, self.detach_target)
        return loss, {"raft": loss.detach()}
