"""Re-ID models by head name (:data:`HEADS`): a backbone from :data:`~lib.models.backbones.BACKBONES` under a head.

A builder receives the method's ``model`` configuration section (``backbone``, ``weights``, ``pooling`` …) and
the number of training identities, and reads only what it needs (those fields enter a run's identity).

* ``hrnet_reid`` — the HRNet-ReID head (PS-HRNet Sec. III-C, Eq. (6), Fig. 4) on any 4-level backbone.
* ``bnneck`` — the standard re-ID baseline (Luo et al. 2019): global average pooling, BNNeck, bias-free classifier;
  ResNet-50 with last stride 1 in PS-HRNet's Table IV (any backbone: its last level).
* ``classifier`` — the backbone's own classification head as the re-ID network (Table VI's HRNet-W32-C): for
  ``hrnet_*`` timm's classification head (incre modules → down-sampling path → 2048-d final layer → pool →
  classifier); for ResNets / MobileNetV2 their own global average pool → linear classifier on the last stage
  (ResNets keep last stride 2, as the classification network). The pooled vector is the re-ID feature.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from ..core.registry import Registry
from .hrnet_classifier import HRNetClassifier
from .hrnet_reid import HRNetReID
from .resnet_reid import ResNet50ReID

__all__ = ["HEADS", "build_reid_model"]

#: ``name -> (model_config, num_classes) -> nn.Module`` returning a :class:`~lib.models.ReIDOutput`.
HEADS = Registry("re-ID head")


@HEADS.register("hrnet_reid")
def _hrnet_reid(cfg: Any, num_classes: int) -> nn.Module:
    return HRNetReID(cfg.backbone, num_classes=num_classes, pooling=cfg.pooling, weights=cfg.weights)


@HEADS.register("bnneck")
def _bnneck(cfg: Any, num_classes: int) -> nn.Module:
    return ResNet50ReID(num_classes, backbone=cfg.backbone, weights=cfg.weights, last_stride=1)


@HEADS.register("classifier")
def _classifier(cfg: Any, num_classes: int) -> nn.Module:
    if cfg.backbone.startswith("hrnet"):
        return HRNetClassifier(num_classes, backbone=cfg.backbone, weights=cfg.weights)
    return ResNet50ReID(num_classes, backbone=cfg.backbone, weights=cfg.weights, last_stride=2, neck="none",
                        test_neck="before")


def build_reid_model(cfg: Any, num_classes: int) -> nn.Module:
    """``HEADS[cfg.head](cfg, num_classes)``; an unknown head lists the registered ones."""
    return HEADS.get(cfg.head)(cfg, num_classes)
