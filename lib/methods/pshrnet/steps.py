"""PS-HRNet's training steps (one forward pass + loss each); the generic trainer does everything else.

* :class:`IDStep` — phase 1 (HR images) and the bicubic baseline (LR images): the identity terms on one image.
* :class:`PseudoSiameseStep` — phase 2 (Sec. III-D, PS-HRNet Eq. (12)): the frozen teacher on the HR image, the student
  G → HRNet-ReID-L on the LR image of the same pair; natively LR samples (no HR original) enter the identity
  terms only.
* :class:`SoloSRStep` — Table III's Solo SR: G alone, L_SR (PS-HRNet Eq. (5)) between G(LR) and the HR image.
"""

from __future__ import annotations

import torch
from torch import nn

from ...engine.precision import Precision
from ...losses import LossComposer
from .losses import PSHRNetLossInputs

__all__ = ["IDStep", "PseudoSiameseStep", "SoloSRStep"]


class IDStep:
    """The identity terms on ``batch[key]`` (``img`` in phase 1, the bicubic ``lr`` for the baseline)."""

    def __init__(self, model: nn.Module, loss: LossComposer, prec: Precision, key: str = "img") -> None:
        self.model, self.loss, self.prec, self.key = model, loss, prec, key

    def __call__(self, batch: dict):
        x = self.prec.prepare_input(batch[self.key])
        y = batch["label"].to(self.prec.device, non_blocking=True)
        total, parts = self.loss(PSHRNetLossInputs(self.model(x), y))
        return total, parts, x.shape[0]


class PseudoSiameseStep:
    """Phase 2: teacher(HR) under ``no_grad``; student(G(LR)); ``L_TOTAL`` over the composed terms
    (PS-HRNet Eq. (12))."""

    def __init__(self, teacher: nn.Module, sr: nn.Module, student: nn.Module, loss: LossComposer, prec: Precision,
                 needs_teacher: bool = True) -> None:
        self.teacher, self.sr, self.student, self.loss, self.prec = teacher, sr, student, loss, prec
        self.needs_teacher = needs_teacher

    def __call__(self, batch: dict):
        has_hr, hr, mask = batch.get("has_hr"), batch["hr"], None
        if has_hr is not None and not bool(has_hr.all()):  # natively LR samples (a CPU tensor: no device sync)
            # indices, not a boolean mask: indexing with a device bool mask would synchronise with the host
            mask = has_hr.nonzero().squeeze(1).to(self.prec.device, non_blocking=True)
            # the PIL path's batch is still on the host; the tensor path's is on the device already
            hr = hr[has_hr] if hr.device.type == "cpu" else hr.index_select(0, mask)
        lr, hr = self.prec.prepare_input(batch["lr"]), self.prec.prepare_input(hr)
        y = batch["label"].to(self.prec.device, non_blocking=True)
        t_out = None
        if self.needs_teacher and hr.shape[0]:
            with torch.no_grad():
                t_out = self.teacher(hr)
        restored = self.sr(lr)
        total, parts = self.loss(PSHRNetLossInputs(self.student(restored), y, restored=restored, hr=hr,
                                                   teacher_out=t_out, hr_mask=mask))
        return total, parts, lr.shape[0]


class SoloSRStep:
    """``L_SR(G(x_l), x_h)`` only (no re-ID network): the Solo SR row of Table III."""

    def __init__(self, sr: nn.Module, loss: LossComposer, prec: Precision) -> None:
        self.sr, self.loss, self.prec = sr, loss, prec

    def __call__(self, batch: dict):
        lr, hr = self.prec.prepare_input(batch["lr"]), self.prec.prepare_input(batch["hr"])
        y = batch["label"].to(self.prec.device, non_blocking=True)
        total, parts = self.loss(PSHRNetLossInputs(None, y, restored=self.sr(lr), hr=hr))
        return total, parts, lr.shape[0]
