"""Super-resolution modules ``G``, by name (:data:`SR_MODULES`), one file each.

Interface: every module takes the LR image already resized to the network input size (as VDSR does),
``(B, 3, H, W)`` and ImageNet-normalised, and returns an image of that shape. Its class attribute
``input_interpolation`` (``'bilinear'`` or ``'bicubic'``) says how the LR image must be resized before it
enters the module. A builder receives the method's ``sr`` configuration section and reads only the fields
it needs, so only those enter a run's identity.

* ``bicubic`` — no learned SR: the bicubic-resized image itself (reads nothing).
* ``srcnn`` — SRCNN 9-5-5, 64/32 filters (Dong et al., ECCV 2014 / TPAMI 2016; reads nothing).
* ``vdsr`` — VDSR (Kim et al., CVPR 2016; reads ``depth``, ``width``, ``init``).
* ``rcan`` — RCAN without upsampler (Zhang et al., ECCV 2018; reads ``groups``, ``blocks``, ``width``,
  ``reduction``).
* ``vdsr_ca`` — VDSR with channel attention, PS-HRNet's G (Sec. III-B, PS-HRNet Eqs. (2)–(4); reads ``depth``,
  ``width``, ``reduction``, ``init``).

``init`` (VDSR, VDSR-CA): ``he`` (the papers'), ``authors`` (the PS-HRNet release's normal(0, √(2/n)) on every conv,
the attention's 1×1 convs included) or ``identity`` (start as the identity map; VDSR-CA also opens its attention
gates, without which its 20-layer body passes ~1e-6 of its signal at initialisation; :mod:`.diagnostics` measures it).
``interpolation`` (every module): ``auto`` (the module's ``input_interpolation``) | ``bilinear`` | ``bicubic``.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from ...core.registry import Registry
from .bicubic import Bicubic
from .rcan import RCAN
from .srcnn import SRCNN
from .vdsr import VDSR
from .vdsr_ca import VDSRCA, ChannelAttention

__all__ = ["SR_MODULES", "build_sr", "INTERPOLATIONS", "Bicubic", "SRCNN", "VDSR", "RCAN", "VDSRCA", "ChannelAttention"]

#: ``name -> (sr_config) -> nn.Module``.
SR_MODULES = Registry("SR module")


@SR_MODULES.register("bicubic")
def _bicubic(cfg: Any) -> nn.Module:
    return Bicubic()


@SR_MODULES.register("srcnn")
def _srcnn(cfg: Any) -> nn.Module:
    return SRCNN()


@SR_MODULES.register("vdsr")
def _vdsr(cfg: Any) -> nn.Module:
    return VDSR(depth=cfg.depth, width=cfg.width, init=getattr(cfg, "init", "he"))


@SR_MODULES.register("rcan")
def _rcan(cfg: Any) -> nn.Module:
    return RCAN(groups=cfg.groups, blocks=cfg.blocks, width=cfg.width, reduction=cfg.reduction)


@SR_MODULES.register("vdsr_ca")
def _vdsr_ca(cfg: Any) -> nn.Module:
    return VDSRCA(depth=cfg.depth, width=cfg.width, reduction=cfg.reduction, init=getattr(cfg, "init", "he"))


#: ``sr.interpolation``: how the LR image is resized before G — the module's own (``auto``) or forced.
INTERPOLATIONS = ("auto", "bilinear", "bicubic")


def build_sr(cfg: Any) -> nn.Module:
    """The SR module ``cfg.name`` built from the ``sr`` configuration section (unknown names list the registered).

    ``cfg.interpolation`` (``auto`` when absent) other than ``auto`` overrides the module's ``input_interpolation``
    (e.g. ``bicubic`` for a learned module: VDSR's own convention, where the pipeline's default is the authors'
    bilinear)."""
    module = SR_MODULES.get(cfg.name)(cfg)
    interp = getattr(cfg, "interpolation", "auto")
    if interp not in INTERPOLATIONS:
        raise ValueError(f"sr.interpolation: expected one of {INTERPOLATIONS}, found {interp!r}")
    if interp != "auto":
        module.input_interpolation = interp
    return module
