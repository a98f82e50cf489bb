"""Re-ID models by head name (:data:`HEADS`): a backbone from :data:`~lib.models.backbones.BACKBONES` under a head.

A builder receives the method's ``model`` configuration section (``backbone``, ``weights``, ``pooling`` …) and
the number of training identities, and reads only what it needs (those fields enter a run's identity).

* ``hrnet_reid`` — the HRNet-ReID head (PS-HRNet Sec. III-C, Eq. (6), Fig. 4) on any 4-level backbone.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from ..core.registry import Registry
from .hrnet_reid import HRNetReID

__all__ = ["HEADS", "build_reid_model"]

#: ``name -> (model_config, num_classes) -> nn.Module`` returning a :class:`~lib.models.ReIDOutput`.
HEADS = Registry("re-ID head")


@HEADS.register("hrnet_reid")
def _hrnet_reid(cfg: Any, num_classes: int) -> nn.Module:
    return HRNetReID(cfg.backbone, num_classes=num_classes, pooling=cfg.pooling, weights=cfg.weights)


def build_reid_model(cfg: Any, num_classes: int) -> nn.Module:
    """``HEADS[cfg.head](cfg, num_classes)``; an unknown head lists the registered ones."""
    return HEADS.get(cfg.head)(cfg, num_classes)
