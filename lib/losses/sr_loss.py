"""Super-resolution loss ``L_SR`` (PS-HRNet paper Eq. (5)).

    L_SR = || G(x_l) - x_h ||_1

between the VDSR-CA output ``G(x_l)`` (the LR image resized to the network size, then refined)
and the HR image. PS-HRNet Eq. (5) sums the per-image L1 norms over the ``P x K`` batch; like the authors'
code (``nn.L1Loss``) the default here is the *mean* absolute error over all elements
(``reduction='sum'`` gives the literal sum). Computed in float32.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["SRLoss", "sr_loss"]


def sr_loss(
    restored: torch.Tensor, hr: torch.Tensor, reduction: Literal["mean", "sum"] = "mean"
) -> torch.Tensor:
    """L1 distance between ``G(x_l)`` and ``x_h`` (PS-HRNet Eq. (5)), float32."""
    if restored.shape != hr.shape:
        raise ValueError(
            f"restored {tuple(restored.shape)} and hr {tuple(hr.shape)} must have the same shape"
        )
    return F.l1_loss(restored.float(), hr.float(), reduction=reduction)


class SRLoss(nn.Module):
    """Module form of :func:`sr_loss` (PS-HRNet Eq. (5)); ``reduction`` ``'mean'`` (default) | ``'sum'``."""

    def __init__(self, reduction: Literal["mean", "sum"] = "mean") -> None:
        super().__init__()
        if reduction not in ("mean", "sum"):
            raise ValueError(f"reduction: expected 'mean' or 'sum', found {reduction!r}")
        self.reduction = reduction

    def forward(self, restored: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        return sr_loss(restored, hr, self.reduction)
