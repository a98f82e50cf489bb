"""VDSR-CA: VDSR (Kim et al., CVPR 2016) with RCAN channel attention (PS-HRNet paper Sec. III-B).

The super-resolution module ``G`` of PS-HRNet: :class:`~lib.models.sr.vdsr.VDSR` with a channel
attention layer inserted after the conv of every body block. Layout (PROTOCOL §3):

    3→64 conv 3×3 + ReLU;  (depth-2) × [64→64 conv 3×3 → CA → ReLU];  64→3 conv 3×3
    output = input + body(input)            (VDSR's global residual)

``CA`` is the channel attention of RCAN (Zhang et al., ECCV 2018, Sec. 3.3), PS-HRNet Eqs. (2)-(4):
``z = H_GP(f)`` (global average pool, PS-HRNet Eq. (4)), ``s = S(W_U δ(W_D z))`` (PS-HRNet Eq. (3), 1×1 convs
``C → C/r → C``), ``f̂_c = s_c · f_c`` (PS-HRNet Eq. (2)).

Choices: the VDSR convs have no bias and He-normal init (``kaiming_normal_``, ``fan_out``, ReLU
gain — the ``normal(0, sqrt(2 / (k·k·C_out)))`` of the VDSR reference implementations); the CA
convs keep their bias and PyTorch's default init, as in RCAN. Reduction ``r = 4`` (paper);
the authors' code uses 64→4 (``r = 16``). The input is the LR image already resized to the
network size (256×128); the module does not upsample.
"""

from __future__ import annotations

import torch
from torch import nn

from .vdsr import VDSR

__all__ = ["ChannelAttention", "VDSRCA", "GATE_OPEN_BIAS"]

#: ``init='identity'``: the bias of each CA gate's last conv, sigmoid(3) ≈ 0.95.
GATE_OPEN_BIAS = 3.0


class ChannelAttention(nn.Module):
    """RCAN channel attention (PS-HRNet Eqs. (2)-(4)).

    Args:
        channels: ``C``.
        reduction: ``r``; the bottleneck has ``max(1, C // r)`` channels (paper: 4).
    """

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        if reduction < 1:
            raise ValueError(f"reduction: expected >= 1, found {reduction}")
        hidden = max(1, channels // reduction)
        self.pool = nn.AdaptiveAvgPool2d(1)  # H_GP, PS-HRNet Eq. (4)
        self.down = nn.Conv2d(channels, hidden, 1, bias=True)  # W_D
        self.act = nn.ReLU(inplace=True)  # δ
        self.up = nn.Conv2d(hidden, channels, 1, bias=True)  # W_U
        self.gate = nn.Sigmoid()  # S

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.gate(self.up(self.act(self.down(self.pool(x)))))  # PS-HRNet Eq. (3)
        return x * s  # PS-HRNet Eq. (2)


class VDSRCA(VDSR):
    """VDSR with channel attention, the SR module ``G`` of PS-HRNet Eq. (5) (PS-HRNet Sec. III-B, Eqs. (2)-(4)).

    A :class:`~lib.models.sr.vdsr.VDSR` whose body blocks are ``conv 3×3 → CA → ReLU``
    (:meth:`_block`); head, tail, global residual and ``residual()`` are VDSR's, as is
    ``reset_parameters()`` (He init of the 3×3 convs; the 1×1 CA convs keep PyTorch's default, as in RCAN).

    Args:
        depth: number of 3×3 conv layers (VDSR: 20), >= 2.
        width: channels of the hidden layers (64).
        reduction: CA reduction ``r`` (paper 4; authors' code 16), >= 1.
        in_channels: image channels (3).

    ``forward(x)`` maps a ``(B, C, H, W)`` image (the LR image resized to the network size) to
    ``x + residual(x)`` of the same shape. State-dict keys: ``head.0.weight``, ``body.<i>.0.weight``,
    ``body.<i>.1.{down,up}.{weight,bias}``, ``tail.weight``.
    """

    def __init__(self, depth: int = 20, width: int = 64, reduction: int = 4, in_channels: int = 3,
                 init: str = "he") -> None:
        if reduction < 1:
            raise ValueError(f"reduction: expected >= 1, found {reduction}")
        # VDSR.__init__ builds the body through self._block, which reads it: set it first
        # (a plain int, so nn.Module allows it before Module.__init__).
        self.reduction = reduction
        super().__init__(depth=depth, width=width, in_channels=in_channels, init=init)

    def _block(self, width: int) -> nn.Sequential:
        """``Sequential(conv 3×3, ChannelAttention, ReLU)``: VDSR's block with CA after the conv."""
        conv, relu = super()._block(width)
        return nn.Sequential(conv, ChannelAttention(width, self.reduction), relu)

    @torch.no_grad()
    def init_identity(self) -> None:
        """VDSR's (tail conv zero) and every attention gate opened: ``W_U``'s bias at +3 (``s ≈ 0.95``).

        At PyTorch's default init each sigmoid gate passes about half of its input, so after ``depth - 2`` blocks
        the body's signal (and the gradient that reaches the early layers) shrinks by ~``0.5^(depth-2)`` (1e-6 at
        depth 20): G's output equals its input to many decimals and it barely trains at small rates."""
        super().init_identity()
        for m in self.modules():
            if isinstance(m, ChannelAttention):
                m.up.bias.fill_(GATE_OPEN_BIAS)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, reduction={self.reduction}"
