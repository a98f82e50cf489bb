"""The standard ResNet-50 re-ID baseline ("bag of tricks", Luo et al. 2019).

Backbone (default torchvision ResNet-50 with last stride 1) → global average pool → 2048-d
``global_feat`` → BNNeck (``BatchNorm1d`` with a frozen zero bias) → ``bn_feat`` → bias-free
classifier. The triplet loss uses ``global_feat`` (``seq = [global_feat]``), the cross entropy the
logits; the test feature is ``bn_feat`` (``test_neck='after'``, default) or ``global_feat``
(``'before'``). Any backbone of :func:`lib.models.build_backbone` can replace ResNet-50 (its last
pyramid level is used). Init (as BoT): BN weight 1 / bias 0, classifier ``normal(0, 0.001)``.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from .backbones import build_backbone
from .outputs import ReIDOutput

__all__ = ["ResNet50ReID"]


class ResNet50ReID(nn.Module):
    """Global-feature re-ID baseline with a BNNeck.

    Args:
        num_classes: number of training identities.
        backbone: backbone name (``'resnet50'``).
        last_stride: stride of ResNet's ``layer4`` (1, re-ID convention; ResNets only).
        weights: backbone weight source (see :mod:`lib.models.weights`).
        neck: ``'bnneck'`` (default) or ``'none'`` (``feat = global_feat``).
        test_neck: test feature ``'after'`` (``bn_feat``) or ``'before'`` the BNNeck (``global_feat``).
    """

    def __init__(
        self,
        num_classes: int,
        backbone: str = "resnet50",
        last_stride: int = 1,
        weights: str | None = "none",
        neck: Literal["bnneck", "none"] = "bnneck",
        test_neck: Literal["after", "before"] = "after",
    ) -> None:
        super().__init__()
        kwargs = {"last_stride": last_stride} if backbone.startswith("resnet") else {}
        self.backbone_name = backbone
        self.backbone, channels = build_backbone(backbone, weights=weights, **kwargs)
        self.feat_dim = channels[-1]
        if neck not in ("bnneck", "none"):
            raise ValueError(f"neck: expected 'bnneck' or 'none', found {neck!r}")
        if test_neck not in ("after", "before"):
            raise ValueError(f"test_neck: expected 'after' or 'before', found {test_neck!r}")
        self.neck, self.test_neck = neck, test_neck
        self.bottleneck: nn.Module
        if neck == "bnneck":
            self.bottleneck = nn.BatchNorm1d(self.feat_dim)
            self.bottleneck.bias.requires_grad_(False)
        else:
            self.bottleneck = nn.Identity()
        self.classifier = nn.Linear(self.feat_dim, num_classes, bias=False)
        nn.init.normal_(self.classifier.weight, std=0.001)

    @property
    def test_dim(self) -> int:
        return self.feat_dim

    def forward(self, x: torch.Tensor) -> ReIDOutput:
        global_feat = F.adaptive_avg_pool2d(self.backbone(x)[-1], 1).flatten(1)
        feat = self.bottleneck(global_feat)
        return ReIDOutput(seq=[global_feat], feat=feat, logits=self.classifier(feat))

    def test_feature(self, out: ReIDOutput) -> torch.Tensor:
        return out.feat if self.test_neck == "after" else out.seq[0]

    def extract(self, x: torch.Tensor) -> torch.Tensor:
        return self.test_feature(self(x))
