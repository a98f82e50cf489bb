"""The HRNet-ReID representation head (PS-HRNet paper Sec. III-C, Eq. (6), Figs. 3-4).

For each branch ``n`` of a 4-level feature pyramid ``f^(1..4)``:

    Seq^(n) = V( AAP(f^(n), g_n) + λ_n · AMP(f^(n), g_n) )                     (PS-HRNet Eq. (6))

(adaptive average / max pooling to the grid ``g_n``, ``V`` = flatten), ``Seq^(5)`` is the
concatenation of ``Seq^(1..4)``, ``ℓ_f = FC_1(Seq^(5))`` with ``FC_1 = Linear → BatchNorm1d →
Dropout(0.5)`` and ``ℓ_c = FC_2(ℓ_f)`` (Fig. 4). The test feature is ``concat(Seq^(5), ℓ_f)``.

Defaults (PROTOCOL §4): grids ``(4×4, 2×2, 2×2, 1×1)``, ``λ = (0.5, 0.2, 0.2, 0.2)``; with
HRNet-W32's 128/256/512/1024 channels this gives Seq dims 2048/1024/2048/1024 and 6144, and a
6656-d test feature. PS-HRNet Eq. (6) writes the grid as ``n × n``; the paper's stated lengths (2048, 1024,
2048, 1024) require the grids above instead, which is what is implemented.

``pooling`` (paper Table V): ``'avg+max'`` (PS-HRNet Eq. (6), default), ``'avg'`` (``AAP`` only) or
``'max'`` (``AMP`` only, without the ``λ_n`` factor, which only weighs AMP against AAP). The
dimensions do not depend on ``pooling``. Adaptive pooling also works for inputs smaller than the
grid (bins then overlap).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from .outputs import ReIDOutput

__all__ = ["ReIDHead", "DEFAULT_GRIDS", "DEFAULT_LAMBDAS"]

Pooling = Literal["avg+max", "avg", "max"]
Grid = int | tuple[int, int]

DEFAULT_GRIDS: tuple[tuple[int, int], ...] = ((4, 4), (2, 2), (2, 2), (1, 1))
DEFAULT_LAMBDAS: tuple[float, ...] = (0.5, 0.2, 0.2, 0.2)


def _grid(g: Grid) -> tuple[int, int]:
    gh, gw = (g, g) if isinstance(g, int) else tuple(g)
    if gh < 1 or gw < 1:
        raise ValueError(f"grid: expected positive sizes, found {g}")
    return int(gh), int(gw)


class ReIDHead(nn.Module):
    """HRNet-ReID head on any pyramid of ``len(in_channels)`` maps (PS-HRNet Eq. (6), Fig. 4).

    Args:
        in_channels: channels of the input maps, finest first (HRNet-W32: 128, 256, 512, 1024).
        num_classes: number of training identities (size of ``ℓ_c``).
        grids: adaptive-pooling output size per branch (int or ``(h, w)``).
        lambdas: ``λ_n`` weighting AMP per branch (used by ``'avg+max'`` only).
        pooling: ``'avg+max'`` | ``'avg'`` | ``'max'`` (Table V).
        feat_dim: size of ``ℓ_f`` (512).
        dropout: dropout probability in FC_1 (0.5).

    Init: PyTorch defaults for both linear layers, BatchNorm1d weight 1 / bias 0.
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        num_classes: int,
        grids: Sequence[Grid] = DEFAULT_GRIDS,
        lambdas: Sequence[float] = DEFAULT_LAMBDAS,
        pooling: Pooling = "avg+max",
        feat_dim: int = 512,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        n = len(in_channels)
        if len(grids) != n or len(lambdas) != n:
            raise ValueError(
                f"in_channels ({n}), grids ({len(grids)}) and lambdas ({len(lambdas)}) must have the same length"
            )
        if pooling not in ("avg+max", "avg", "max"):
            raise ValueError(f"pooling: expected 'avg+max', 'avg' or 'max', found {pooling!r}")
        if num_classes < 1:
            raise ValueError(f"num_classes: expected >= 1, found {num_classes}")
        self.in_channels = tuple(int(c) for c in in_channels)
        self.grids = tuple(_grid(g) for g in grids)
        self.lambdas = tuple(float(v) for v in lambdas)
        self.pooling = pooling
        self.seq_dims: tuple[int, ...] = tuple(c * gh * gw for c, (gh, gw) in zip(self.in_channels, self.grids))
        self.seq_dims = self.seq_dims + (sum(self.seq_dims),)
        self.feat_dim = feat_dim
        self.num_classes = num_classes
        # FC_1 -> ℓ_f ; FC_2 -> ℓ_c (Fig. 4)
        self.fc1 = nn.Sequential(
            nn.Linear(self.seq_dims[-1], feat_dim), nn.BatchNorm1d(feat_dim), nn.Dropout(dropout)
        )
        self.fc2 = nn.Linear(feat_dim, num_classes)

    @property
    def test_dim(self) -> int:
        """Size of the test feature ``concat(Seq^(5), ℓ_f)``."""
        return self.seq_dims[-1] + self.feat_dim

    def sequence(self, f: torch.Tensor, n: int) -> torch.Tensor:
        """``Seq^(n+1)`` of PS-HRNet Eq. (6) from the map ``f`` of branch ``n`` (0-based)."""
        g = self.grids[n]
        if self.pooling == "avg":
            p = F.adaptive_avg_pool2d(f, g)
        elif self.pooling == "max":
            p = F.adaptive_max_pool2d(f, g)
        else:
            p = F.adaptive_avg_pool2d(f, g) + self.lambdas[n] * F.adaptive_max_pool2d(f, g)
        return p.flatten(1)  # V: (C, h, w) order, whatever the memory format

    def forward(self, features: Sequence[torch.Tensor]) -> ReIDOutput:
        if len(features) != len(self.in_channels):
            raise ValueError(f"expected {len(self.in_channels)} feature maps, found {len(features)}")
        seq = [self.sequence(f, n) for n, f in enumerate(features)]
        seq.append(torch.cat(seq, dim=1))  # Seq^(5)
        feat = self.fc1(seq[-1])  # ℓ_f
        logits = self.fc2(feat)  # ℓ_c
        return ReIDOutput(seq=seq, feat=feat, logits=logits)

    @staticmethod
    def test_feature(out: ReIDOutput) -> torch.Tensor:
        """``concat(Seq^(5), ℓ_f)``, the paper's test-time representation (Sec. III-E)."""
        return torch.cat([out.seq[-1], out.feat], dim=1)

    def extra_repr(self) -> str:
        return f"grids={self.grids}, lambdas={self.lambdas}, pooling={self.pooling!r}, seq_dims={self.seq_dims}"
