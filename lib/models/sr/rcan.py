"""RCAN: "Image Super-Resolution Using Very Deep Residual Channel Attention Networks" (Zhang et al., ECCV 2018).

Residual-in-residual structure (paper Sec. 3, Fig. 2):

    head:  C→w conv 3×3
    body:  groups × ResidualGroup;  w→w conv 3×3;  + head output            (long skip connection)
           ResidualGroup = blocks × RCAB;  w→w conv 3×3;  + group input      (group residual)
           RCAB = conv 3×3 → ReLU → conv 3×3 → CA;  + block input             (block residual)
    tail:  w→C conv 3×3
    output = input + tail(body(head(input)))

``CA`` is the channel attention of :class:`~lib.models.sr.vdsr_ca.ChannelAttention` (paper Sec. 3.3;
PS-HRNet Eqs. (2)-(4)). The paper's network has 10 groups × 20 RCABs, width 64, reduction 16: by our count
15,296,931 parameters without upsampler (15.59 M with the authors' ×4 upsampler, two 64→256 convs and
pixel shuffles); the default here is reduced to 3 groups × 5 RCABs (1.27 M).

Adaptations:

* No upsampler: the input is the LR image already resized to the network size (bilinearly,
  ``input_interpolation``), as for every SR module of the pipeline; the tail conv maps straight to ``C``.
* A global residual ``output = input + tail(...)``, as in VDSR, so the module refines the resized image
  (the paper's network, which upsamples, has none).
* No mean shift: the input is already ImageNet-normalised.
* Convs with bias and PyTorch's default init, as the authors' code; residual scaling 1.
"""

from __future__ import annotations

import torch
from torch import nn

from .vdsr_ca import ChannelAttention

__all__ = ["RCAB", "ResidualGroup", "RCAN"]


def _conv(in_channels: int, out_channels: int) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=True)


class RCAB(nn.Module):
    """Residual channel attention block: ``x + CA(conv(ReLU(conv(x))))`` (paper Sec. 3.4)."""

    def __init__(self, width: int, reduction: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _conv(width, width), nn.ReLU(inplace=True), _conv(width, width), ChannelAttention(width, reduction)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResidualGroup(nn.Module):
    """``blocks`` RCABs and a conv, with a short skip connection: ``x + conv(RCABs(x))`` (paper Sec. 3.2)."""

    def __init__(self, blocks: int, width: int, reduction: int) -> None:
        super().__init__()
        self.body = nn.Sequential(*[RCAB(width, reduction) for _ in range(blocks)], _conv(width, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class RCAN(nn.Module):
    """RCAN without upsampler, with a global residual.

    Args:
        groups: residual groups (paper: 10), >= 1.
        blocks: RCABs per group (paper: 20), >= 1.
        width: feature channels (64).
        reduction: CA reduction ``r`` (paper: 16), >= 1.
        in_channels: image channels (3).

    ``forward(x)`` maps a ``(B, C, H, W)`` image (the LR image resized to the network size) to
    ``x + residual(x)`` of the same shape.
    """

    #: How the LR image is resized to the network size before it enters the module.
    input_interpolation: str = "bilinear"

    def __init__(
        self, groups: int = 3, blocks: int = 5, width: int = 64, reduction: int = 16, in_channels: int = 3
    ) -> None:
        super().__init__()
        for name, value in (("groups", groups), ("blocks", blocks), ("reduction", reduction)):
            if value < 1:
                raise ValueError(f"{name}: expected >= 1, found {value}")
        self.groups = groups
        self.blocks = blocks
        self.width = width
        self.reduction = reduction
        self.head = _conv(in_channels, width)
        self.body = nn.Sequential(
            *[ResidualGroup(blocks, width, reduction) for _ in range(groups)], _conv(width, width)
        )
        self.tail = _conv(width, in_channels)

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        """``tail(f + body(f))`` with ``f = head(x)``: the predicted residual image."""
        f = self.head(x)
        return self.tail(f + self.body(f))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.residual(x)

    def extra_repr(self) -> str:
        return f"groups={self.groups}, blocks={self.blocks}, width={self.width}, reduction={self.reduction}"
