"""FTWA's training step (Sec. 2, FTWA Eq. (8)): the batch split into HR images (with their fresh I'_LR) and LR images,
one forward pass through :class:`~lib.models.ftwa.FTWANet`, the composed loss; the generic trainer does the rest."""

from __future__ import annotations

import torch
from torch import nn

from ...engine.precision import Precision
from ...losses import LossComposer
from .losses import FTWALossInputs

__all__ = ["FTWAStep"]


class FTWAStep:
    """``batch -> (L, parts, batch size)``: items with ``lr_input`` are LR images (I_LR → F_LR, F'_HR = T(F_LR)), the
    others HR images (I_HR → F_HR and their down-sampled ``lr`` I'_LR → F'_LR). The loss sees the HR images' labels
    first, then the LR images' (:mod:`.losses`)."""

    def __init__(self, model: nn.Module, loss: LossComposer, prec: Precision) -> None:
        self.model, self.loss, self.prec = model, loss, prec

    def __call__(self, batch: dict):
        is_lr = torch.as_tensor(batch["lr_input"], dtype=torch.bool)  # a CPU tensor: selecting costs no device sync
        h, l = (~is_lr).nonzero().squeeze(1), is_lr.nonzero().squeeze(1)
        hr = self.prec.prepare_input(batch["hr"][h])
        lr_p = self.prec.prepare_input(batch["lr"][h])
        lr = self.prec.prepare_input(batch["lr"][l])
        y = torch.cat([batch["label"][h], batch["label"][l]]).to(self.prec.device, non_blocking=True)
        total, parts = self.loss(FTWALossInputs(self.model(hr, lr_p, lr), y))
        return total, parts, y.shape[0]
