"""FTWA's loss terms, their inputs and their configuration (the ``loss`` section), composed by the shared
:class:`~lib.losses.LossComposer` as ``L = λ₁ L_Cls + λ₂ L_Tri + λ₃ L_RAFT`` (FTWA Eq. (8): 3, 1, 0.1):

* ``swa_cls`` — the SWA classification loss (FTWA Eq. (5)), :func:`lib.losses.swa.swa_classification_loss`;
* ``swa_tri`` — the SWA triplet loss (FTWA Eqs. (6)–(7)), :func:`lib.losses.swa.swa_triplet_loss`;
* ``raft`` — L_RAFT (FTWA Eq. (2)), :func:`lib.losses.swa.raft_loss`.

Inputs (:class:`FTWALossInputs`): a :class:`~lib.models.ftwa.FTWAOutput` — the vectors, weights and identity scores
of the HR images (``hr``, with ``lr_p`` from their down-sampled versions) and of the LR images (``lr``, with
``hr_p`` through T) — and the labels of the HR images first, then the LR images'. The readings of what the paper
leaves open, options of :class:`SWALossConfig`, are described in :mod:`lib.losses.swa`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F

from ...core.config import NEUTRAL_DEFAULT
from ...losses import LOSS_TERMS, LossInputs, LossTerm
from ...losses.swa import WEIGHT_GRADS, raft_loss, swa_classification_loss, swa_triplet_loss

__all__ = ["FTWA_TERMS", "SWALossConfig", "FTWALossInputs", "SWAClassificationTerm", "SWATripletTerm", "RAFTTerm"]

#: FTWA's loss terms (FTWA Eq. (8)); PS-HRNet's (ce, triplet, sr, ps) read other outputs.
FTWA_TERMS = ("swa_cls", "swa_tri", "raft")


@dataclass(frozen=True)
class SWALossConfig:
    """Hyper-parameters of FTWA's loss terms (the weights λ₁..λ₃ are ``train.losses``).

    Attributes:
        margin: triplet margin m of FTWA Eq. (6) (0.3).
        label_smooth: ε of the cross entropies of FTWA Eq. (5) (0: the paper's plain softmax cross entropy).
        triplet_normalize: L2-normalise the vectors inside the triplet loss (``False``).
        triplet_no_positive: anchors without a positive: ``'skip'`` | ``'self'``.
        weight_grad: how the gradient reaches the quality weights of FTWA Eqs. (5) and (7)
            (:data:`~lib.losses.swa.WEIGHT_GRADS`: ``'full'``, as written | ``'detach_denominator'``).
        raft_detach_target: L_RAFT's target F_HR a constant (``True``) or also trained (``False``, as written).
        weight_floor: a floor on each normalised weight of FTWA Eqs. (5) and (7) (0, as written; our option).
    """

    margin: float = 0.3
    label_smooth: float = 0.0
    triplet_normalize: bool = False
    triplet_no_positive: Literal["skip", "self"] = "skip"
    weight_grad: str = "full"
    raft_detach_target: bool = False
    weight_floor: float = field(default=0.0, metadata=NEUTRAL_DEFAULT)  # added after the first runs: 0 stays out of identities

    def __post_init__(self) -> None:
        if self.weight_grad not in WEIGHT_GRADS:
            raise ValueError(f"weight_grad: expected one of {WEIGHT_GRADS}, found {self.weight_grad!r}")
        if not 0.0 <= self.weight_floor < 0.5:
            raise ValueError(f"weight_floor: expected a number in [0, 0.5), found {self.weight_floor!r}")


@dataclass
class FTWALossInputs(LossInputs):
    """What FTWA's step hands the terms: ``out`` a :class:`~lib.models.ftwa.FTWAOutput`, ``targets`` the HR images'
    labels first, then the LR images'."""

    def split_targets(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(labels of the HR images, labels of the LR images)``."""
        n_h = self.out.v["hr"].shape[0]
        return self.targets[:n_h], self.targets[n_h:]


@LOSS_TERMS.register("swa_cls")
class SWAClassificationTerm(LossTerm):
    """``L^Cls_SWA`` (FTWA Eq. (5)) on C_HR / C_LR's scores."""

    reads = ("label_smooth", "weight_grad", "weight_floor")

    def forward(self, x: FTWALossInputs):
        y_hr, y_lr = x.split_targets()
        y = {"hr": y_hr, "lr_p": y_hr, "lr": y_lr, "hr_p": y_lr}
        ce = {k: F.cross_entropy(x.out.logits[k].float(), y[k], reduction="none", label_smoothing=self.label_smooth)
              for k in y}
        lw = {k: t.float() for k, t in x.out.log_w.items()}
        loss = swa_classification_loss(ce, lw, self.weight_grad, log_w=True, floor=self.weight_floor)
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
class SWATripletTerm(LossTerm):
    """``L^Tri_SWA`` (FTWA Eq. (7)) over the batch-hard triplet losses of FTWA Eq. (6)."""

    reads = ("margin", "weight_grad", "weight_floor", "triplet_normalize", "triplet_no_positive")

    def forward(self, x: FTWALossInputs):
        y_hr, y_lr = x.split_targets()
        loss = swa_triplet_loss({k: t.float() for k, t in x.out.v.items()}, {k: t.float() for k, t in x.out.log_w.items()},
                                y_hr, y_lr, self.margin, self.weight_grad, self.triplet_normalize, self.triplet_no_positive,
                                log_w=True, floor=self.weight_floor)
        return loss, {"tri": loss.detach()}


@LOSS_TERMS.register("raft")
class RAFTTerm(LossTerm):
    """``L_RAFT`` (FTWA Eq. (2)) on the HR images and their down-sampled versions."""

    reads = ("raft_detach_target",)

    def forward(self, x: FTWALossInputs):
        if x.out.f_hr.shape[0] == 0:
            return None, {}
        loss = raft_loss(x.out.f_hr, x.out.t_lr_p, self.raft_detach_target)
        return loss, {"raft": loss.detach()}
