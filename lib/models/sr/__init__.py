"""Super-resolution modules ``G``, by name (:data:`SR_MODULES`), one file each.

Interface: every module takes the LR image already resized to the network input size (as VDSR does) and
returns an image of that size. A builder receives the method's ``sr`` configuration section and reads the
fields it needs (``depth``, ``width``, ``reduction``), so only those enter a run's identity.

* ``vdsr_ca`` — VDSR with channel attention, PS-HRNet's G (Sec. III-B, Eqs. (2)–(4)).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from ...core.registry import Registry
from .vdsr_ca import VDSRCA, ChannelAttention

__all__ = ["SR_MODULES", "build_sr", "VDSRCA", "ChannelAttention"]

#: ``name -> (sr_config) -> nn.Module``.
SR_MODULES = Registry("SR module")


@SR_MODULES.register("vdsr_ca")
def _vdsr_ca(cfg: Any) -> nn.Module:
    return VDSRCA(depth=cfg.depth, width=cfg.width, reduction=cfg.reduction)


def build_sr(cfg: Any) -> nn.Module:
    """The SR module ``cfg.name`` built from the ``sr`` configuration section (unknown names list the registered)."""
    return SR_MODULES.get(cfg.name)(cfg)
