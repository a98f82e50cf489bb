"""RAFT: FTWA's resolution-association re-ID feature transformation T (FTWA Sec. 2.2, Fig. 2, Eqs. (2)–(3)).

T maps an LR image's re-ID feature map (E_ID's output, ``(B, C, H, W)``) to the feature map of its HR version,
the same shape: ``F'_HR = T(F_LR)`` (FTWA Eq. (3)), trained with ``L_RAFT = ‖F_HR − T(F'_LR)‖₁`` (FTWA Eq. (2)).
The paper builds it "in a similar way" to IMDN (Hui et al. 2019), on features instead of pixels, and draws it only
as a figure; our reading (every choice an argument):

* head: 1×1 convolution C → ``width`` (a lightweight T on 2048-channel ResNet-50 maps: a 3×3 convolution at full
  width would hold 38 M weights), LReLU;
* ``blocks`` × :class:`RAFTBlock` (IMDN's information multi-distillation block): a 3×3 convolution, then per step
  a channel split (CP) into a *distilled* half kept aside and a *remaining* half refined by the next 3×3
  convolution (progressive distillation, ``steps`` of them); the distilled parts are concatenated (CAT),
  re-weighted by channel attention, fused by a 1×1 convolution (Conv1, no activation) and added to the block's
  input. Every convolution but Conv1 is followed by LReLU (slope 0.05, IMDN's);
* channel attention ``attention='contrast'`` (IMDN's contrast-aware attention: per-channel standard deviation +
  mean → 1×1 reduce → ReLU → 1×1 expand → sigmoid) or ``'avg'`` (the global average pooling FTWA's Fig. 2 names);
* tail: the blocks' outputs concatenated → 1×1 convolution → LReLU → 3×3 convolution to ``width`` → 1×1 back to C,
  added to the input (T starts close to the identity: the tail's last convolution is zero-initialised, so before
  training ``T(F) = F`` and L_RAFT starts at the plain LR/HR feature gap).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["RAFT", "RAFTBlock", "ChannelAttention2d", "ATTENTIONS"]

ATTENTIONS = ("contrast", "avg")
_SLOPE = 0.05


def _lrelu() -> nn.Module:
    return nn.LeakyReLU(_SLOPE, inplace=True)


class ChannelAttention2d(nn.Module):
    """Channel attention: ``x · sigmoid(W_u ReLU(W_d s(x)))`` with ``s`` = std + mean (``'contrast'``, IMDN) or the
    mean alone (``'avg'``). The standard deviation is ``sqrt(var + 1e-6)`` in float32: a constant channel (likely on
    the small maps of E_ID's output, 8 × 4 at 256 × 128 or 4 × 2 in the ``cpu`` profile) has variance 0, where the
    plain square root's gradient is infinite (the first real run turned every weight into NaN that way)."""

    EPS = 1e-6

    def __init__(self, channels: int, reduction: int = 16, kind: str = "contrast") -> None:
        super().__init__()
        if kind not in ATTENTIONS:
            raise ValueError(f"attention: expected one of {ATTENTIONS}, found {kind!r}")
        self.kind = kind
        hidden = max(1, channels // reduction)
        self.body = nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.ReLU(inplace=True), nn.Conv2d(hidden, channels, 1),
                                  nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=(2, 3), keepdim=True)
        s = mean
        if self.kind == "contrast":
            var = (x.float() - mean.float()).pow(2).mean(dim=(2, 3), keepdim=True)
            s = s + (var + self.EPS).sqrt().to(s.dtype)
        return x * self.body(s)


class RAFTBlock(nn.Module):
    """One information multi-distillation block on ``width`` channels (``width`` even): ``steps`` distillation
    steps, each splitting its input into two halves (CP)."""

    def __init__(self, width: int, steps: int = 3, attention: str = "contrast", reduction: int = 16) -> None:
        super().__init__()
        if width % 2 or width < 2:
            raise ValueError(f"RAFT width must be even and ≥ 2 (each step splits the channels in half), found {width}")
        if steps < 1:
            raise ValueError(f"RAFT steps: expected ≥ 1, found {steps}")
        half = width // 2
        self.first = nn.Sequential(nn.Conv2d(width, width, 3, padding=1), _lrelu())
        # each step refines the remaining half back to full width, the last one to the final distilled half
        self.refine = nn.ModuleList(
            nn.Sequential(nn.Conv2d(half, width if i < steps - 1 else half, 3, padding=1), _lrelu()) for i in range(steps))
        self.attention = ChannelAttention2d(half * (steps + 1), reduction, attention)
        self.fuse = nn.Conv2d(half * (steps + 1), width, 1)  # Conv1: no activation
        self.half = half

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.first(x)
        kept = []
        for conv in self.refine:
            d, r = torch.split(y, [self.half, y.shape[1] - self.half], dim=1)  # CP
            kept.append(d)
            y = conv(r)
        kept.append(y)
        return x + self.fuse(self.attention(torch.cat(kept, dim=1)))


class RAFT(nn.Module):
    """T: ``(B, C, H, W) -> (B, C, H, W)`` (see the module docstring).

    Args:
        channels: C, E_ID's output channels (ResNet-50: 2048; MobileNetV2: 1280).
        width: channels inside T (default 256).
        blocks: number of :class:`RAFTBlock` (default 2).
        steps: distillation steps per block (default 3, IMDN's).
        attention: ``'contrast'`` (default, IMDN) | ``'avg'`` (FTWA Fig. 2's GAP).
        reduction: channel-attention reduction (16).
    """

    def __init__(self, channels: int, width: int = 256, blocks: int = 2, steps: int = 3, attention: str = "contrast",
                 reduction: int = 16) -> None:
        super().__init__()
        if blocks < 1:
            raise ValueError(f"RAFT blocks: expected ≥ 1, found {blocks}")
        self.head = nn.Sequential(nn.Conv2d(channels, width, 1), _lrelu())
        self.blocks = nn.ModuleList(RAFTBlock(width, steps, attention, reduction) for _ in range(blocks))
        self.tail = nn.Sequential(nn.Conv2d(width * blocks, width, 1), _lrelu(), nn.Conv2d(width, width, 3, padding=1),
                                  _lrelu(), nn.Conv2d(width, channels, 1))
        nn.init.zeros_(self.tail[-1].weight)
        nn.init.zeros_(self.tail[-1].bias)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        y = self.head(f)
        outs = []
        for block in self.blocks:
            y = block(y)
            outs.append(y)
        return f + self.tail(torch.cat(outs, dim=1))
