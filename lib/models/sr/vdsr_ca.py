"""VDSR-CA: VDSR (Kim et al., CVPR 2016) with RCAN channel attention (PS-HRNet paper Sec. III-B).

The super-resolution module ``G`` of PS-HRNet. Layout (PROTOCOL §3):

    3→64 conv 3×3 + ReLU;  (depth-2) × [64→64 conv 3×3 → CA → ReLU];  64→3 conv 3×3
    output = input + body(input)            (VDSR's global residual)

``CA`` is RCAN's channel attention, paper Eqs. (2)-(4):
``z = H_GP(f)`` (global average pool, Eq. (4)), ``s = S(W_U δ(W_D z))`` (Eq. (3), 1×1 convs
``C → C/r → C``), ``f̂_c = s_c · f_c`` (Eq. (2)).

Choices: the VDSR convs have no bias and He-normal init (``kaiming_normal_``, ``fan_out``, ReLU
gain — the ``normal(0, sqrt(2 / (k·k·C_out)))`` of the VDSR reference implementations); the CA
convs keep their bias and PyTorch's default init, as in RCAN. Reduction ``r = 4`` (paper);
the authors' code uses 64→4 (``r = 16``). The input is the LR image already resized to the
network size (256×128); the module does not upsample.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ChannelAttention", "VDSRCA"]


class ChannelAttention(nn.Module):
    """RCAN channel attention (paper Eqs. (2)-(4)).

    Args:
        channels: ``C``.
        reduction: ``r``; the bottleneck has ``max(1, C // r)`` channels (paper: 4).
    """

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        if reduction < 1:
            raise ValueError(f"reduction: expected >= 1, found {reduction}")
        hidden = max(1, channels // reduction)
        self.pool = nn.AdaptiveAvgPool2d(1)  # H_GP, Eq. (4)
        self.down = nn.Conv2d(channels, hidden, 1, bias=True)  # W_D
        self.act = nn.ReLU(inplace=True)  # δ
        self.up = nn.Conv2d(hidden, channels, 1, bias=True)  # W_U
        self.gate = nn.Sigmoid()  # S

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.gate(self.up(self.act(self.down(self.pool(x)))))  # Eq. (3)
        return x * s  # Eq. (2)


class VDSRCA(nn.Module):
    """VDSR with channel attention, the SR module ``G`` of Eq. (5).

    Args:
        depth: number of 3×3 conv layers (VDSR: 20), >= 2.
        width: channels of the hidden layers (64).
        reduction: CA reduction ``r`` (paper 4; authors' code 16).
        in_channels: image channels (3).

    ``forward(x)`` maps a ``(B, C, H, W)`` image (the LR image resized to the network size) to
    ``x + body(x)`` of the same shape.
    """

    def __init__(self, depth: int = 20, width: int = 64, reduction: int = 4, in_channels: int = 3) -> None:
        super().__init__()
        if depth < 2:
            raise ValueError(f"depth: expected >= 2, found {depth}")
        self.depth = depth
        self.width = width
        self.reduction = reduction
        self.head = nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1, bias=False), nn.ReLU(inplace=True))
        self.body = nn.Sequential(
            *[
                nn.Sequential(
                    nn.Conv2d(width, width, 3, padding=1, bias=False),
                    ChannelAttention(width, reduction),
                    nn.ReLU(inplace=True),
                )
                for _ in range(depth - 2)
            ]
        )
        self.tail = nn.Conv2d(width, in_channels, 3, padding=1, bias=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """He-normal init of the VDSR convs; the CA convs keep PyTorch's default (as in RCAN)."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        """``body(x)``: the predicted residual image."""
        return self.tail(self.body(self.head(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.residual(x)

    def extra_repr(self) -> str:
        return f"depth={self.depth}, width={self.width}, reduction={self.reduction}"
