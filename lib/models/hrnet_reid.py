"""HRNet-ReID (PS-HRNet paper Sec. III-C/D, Eq. (6), Fig. 4): a 4-level backbone + :class:`ReIDHead`.

The paper's network is ``HRNetReID('hrnet_w32', num_classes)`` on 256×128 images: Seq dims
2048/1024/2048/1024, Seq5 = 6144, ``ℓ_f`` 512, test feature ``concat(Seq5, ℓ_f)`` = 6656.
The same head runs on the other backbones of :func:`lib.models.build_backbone`
(``hrnet_w18_small``, ``resnet50``, ``mobilenet_v2``), e.g. for fast experiments.

The paper initialises the backbone from ImageNet (HRNet-W32-C); the default here is
``weights='none'`` because nothing can be downloaded offline — pass ``weights='hub'`` or
``weights='file:/path/hrnetv2_w32_imagenet_pretrained.pth'`` to follow the paper.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .backbones import build_backbone
from .outputs import ReIDOutput
from .hrnet_reid_head import DEFAULT_GRIDS, DEFAULT_LAMBDAS, Grid, Pooling, ReIDHead

__all__ = ["HRNetReID", "ReIDHead"]


class HRNetReID(nn.Module):
    """Backbone + HRNet-ReID head.

    Args:
        backbone: backbone name (``'hrnet_w32'`` default, see :func:`build_backbone`).
        num_classes: number of training identities (keyword-only, required).
        pooling: ``'avg+max'`` (PS-HRNet Eq. (6)) | ``'avg'`` | ``'max'`` (Table V).
        lambdas: ``λ_n`` per branch (0.5, 0.2, 0.2, 0.2).
        grids: pooling grid per branch ((4, 4), (2, 2), (2, 2), (1, 1)).
        feat_dim: size of ``ℓ_f`` (512).
        dropout: FC_1 dropout (0.5).
        weights: backbone weight source, ``'none'`` | ``'hub'`` | ``'file:<path>'`` |
            ``'deep-sort-mobilenetv2'`` (see :mod:`lib.models.weights`).
        backbone_kwargs: extra arguments of the backbone (e.g. ``last_stride`` for ResNets).

    ``forward(x)`` returns :class:`ReIDOutput` (``seq`` = [Seq1..Seq5], ``feat`` = ℓ_f,
    ``logits`` = ℓ_c) in train and eval mode; :meth:`extract` / :meth:`test_feature` give the test
    feature ``concat(Seq5, ℓ_f)``, and :class:`lib.models.ReIDEmbedder` wraps the model into a
    tensor-returning module.
    """

    def __init__(
        self,
        backbone: str = "hrnet_w32",
        *,
        num_classes: int,
        pooling: Pooling = "avg+max",
        lambdas: Sequence[float] = DEFAULT_LAMBDAS,
        grids: Sequence[Grid] = DEFAULT_GRIDS,
        feat_dim: int = 512,
        dropout: float = 0.5,
        weights: str | None = "none",
        backbone_kwargs: dict | None = None,
    ) -> None:
        super().__init__()
        self.backbone_name = backbone
        self.backbone, channels = build_backbone(backbone, weights=weights, **(backbone_kwargs or {}))
        self.head = ReIDHead(
            channels, num_classes, grids=grids, lambdas=lambdas, pooling=pooling, feat_dim=feat_dim, dropout=dropout
        )

    @property
    def seq_dims(self) -> tuple[int, ...]:
        """Dimensions of Seq1..Seq5."""
        return self.head.seq_dims

    @property
    def test_dim(self) -> int:
        """Dimension of the test feature ``concat(Seq5, ℓ_f)``."""
        return self.head.test_dim

    def forward(self, x: torch.Tensor) -> ReIDOutput:
        return self.head(self.backbone(x))

    def test_feature(self, out: ReIDOutput) -> torch.Tensor:
        """``concat(Seq5, ℓ_f)`` of a forward output (paper Sec. III-E)."""
        return self.head.test_feature(out)

    def extract(self, x: torch.Tensor) -> torch.Tensor:
        """Forward + :meth:`test_feature` (call in eval mode for test features)."""
        return self.test_feature(self(x))
