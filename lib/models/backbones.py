"""Backbones returning a 4-level feature pyramid (strides 4, 8, 16, 32), for :class:`ReIDHead`.

``build_backbone(name, weights=...) -> (module, channels)``; ``module(x)`` returns a list of 4 maps,
finest first, with ``channels[i]`` channels.

* ``hrnet_*`` (timm; the paper's backbone is ``hrnet_w32``, HRNet-W32-C): the four stage-4
  branches after the classification head's ``incre`` bottlenecks —
  ``timm.create_model(name, features_only=True, feature_location='incre', out_indices=(1, 2, 3, 4))``
  (index 0 would be the stride-2 stem). Always 128/256/512/1024 channels (the ``incre`` widths
  do not depend on the HRNet width); at 256×128: 64×32, 32×16, 16×8, 8×4.
* ``resnet18/34/50/101/152`` (torchvision): ``layer1..layer4`` (ResNet-50: 256/512/1024/2048).
  ``last_stride=1`` removes the stride of ``layer4`` (the re-ID "last stride 1" trick; then the
  last level has stride 16).
* ``mobilenet_v2`` (torchvision ``mobilenet_v2().features``): the outputs of blocks 3, 6, 13 and
  18 — the last block at strides 4, 8, 16 and 32 — with 24/32/96/1280 channels. ``last_stride=1``
  removes the stride of block 14 (the depthwise convolution of the last down-sampling block), as
  ResNet's ``last_stride``.

Two-stream methods (FTWA) cut a backbone in two with ``split()``: a *stem* up to the end of the first
level (ResNet: ``conv1`` … ``layer1``; MobileNetV2: blocks 0–3, also stride 4) and a *body* (the rest, to
the last level). HRNet's parallel branches have no such cut and do not offer it.

Weight sources (``weights=``): see :mod:`lib.models.weights`.
"""

from __future__ import annotations

from collections.abc import Sequence

import timm
import torch
import torchvision
from torch import nn

from ..core.registry import Registry

from .weights import (
    HRNET_CLS_HEAD_PREFIXES,
    LoadReport,
    check_matched_share,
    hrnet_official_to_timm,
    hub_call,
    load_deep_sort_mobilenetv2,
    load_state_dict_into,
    parse_weights,
    read_checkpoint,
    weights_skipped,
)

__all__ = [
    "BACKBONES",
    "HRNetBackbone",
    "ResNetBackbone",
    "MobileNetV2Backbone",
    "build_backbone",
    "is_backbone_name",
    "MOBILENET_V2_TAPS",
]

RESNETS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")
#: Blocks of ``mobilenet_v2().features`` whose outputs are taken (strides 4, 8, 16, 32).
MOBILENET_V2_TAPS: tuple[int, ...] = (3, 6, 13, 18)


class HRNetBackbone(nn.Module):
    """timm HRNet, ``features_only`` with ``feature_location='incre'``, last 4 levels.

    ``self.body`` is the timm model; its keys are those of the official HRNet checkpoints.
    """

    checkpoint_ignore_prefixes: tuple[str, ...] = HRNET_CLS_HEAD_PREFIXES

    def __init__(self, name: str = "hrnet_w32", pretrained: bool = False) -> None:
        super().__init__()
        self.name = name
        self.body = timm.create_model(
            name, features_only=True, feature_location="incre", out_indices=(1, 2, 3, 4), pretrained=pretrained
        )
        self.channels: tuple[int, ...] = tuple(self.body.feature_info.channels())
        self.strides: tuple[int, ...] = tuple(self.body.feature_info.reduction())

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.body(x)

    def weights_target(self) -> nn.Module:
        return self.body

    @staticmethod
    def checkpoint_key_map(key: str) -> str | None:
        return hrnet_official_to_timm(key)


class ResNetBackbone(nn.Module):
    """torchvision ResNet without ``avgpool``/``fc``; returns ``layer1..layer4`` outputs.

    Module names equal torchvision's, so torchvision checkpoints load directly (``fc.*`` ignored).
    """

    checkpoint_ignore_prefixes: tuple[str, ...] = ("fc.",)

    def __init__(self, name: str = "resnet50", pretrained: bool = False, last_stride: int = 2) -> None:
        super().__init__()
        if name not in RESNETS:
            raise ValueError(f"unknown ResNet {name!r}; valid: {RESNETS}")
        if last_stride not in (1, 2):
            raise ValueError(f"last_stride: expected 1 or 2, found {last_stride}")
        self.name = name
        net = getattr(torchvision.models, name)(weights="IMAGENET1K_V1" if pretrained else None)
        self.conv1, self.bn1, self.relu, self.maxpool = net.conv1, net.bn1, net.relu, net.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4
        if last_stride == 1:
            block = self.layer4[0]
            (block.conv2 if hasattr(block, "conv3") else block.conv1).stride = (1, 1)
            block.downsample[0].stride = (1, 1)
        self.last_stride = last_stride
        expansion = 4 if name in ("resnet50", "resnet101", "resnet152") else 1
        self.channels = tuple(c * expansion for c in (64, 128, 256, 512))
        self.strides = (4, 8, 16, 32 if last_stride == 2 else 16)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        c1 = self.layer1(x)
        c2 = self.layer2(c1)
        c3 = self.layer3(c2)
        c4 = self.layer4(c3)
        return [c1, c2, c3, c4]

    def weights_target(self) -> nn.Module:
        return self

    def split(self) -> tuple[nn.Module, nn.Module]:
        """``(stem, body)``: ``conv1`` … ``layer1`` (stride 4, as FTWA's E_L / E_H) and ``layer2..layer4`` (E_ID);
        the modules are shared with this backbone, not copied."""
        return (nn.Sequential(self.conv1, self.bn1, self.relu, self.maxpool, self.layer1),
                nn.Sequential(self.layer2, self.layer3, self.layer4))

    @staticmethod
    def checkpoint_key_map(key: str) -> str | None:
        return key


class MobileNetV2Backbone(nn.Module):
    """torchvision ``mobilenet_v2().features``; returns the outputs of :data:`MOBILENET_V2_TAPS`."""

    checkpoint_ignore_prefixes: tuple[str, ...] = ("classifier.",)

    def __init__(
        self, name: str = "mobilenet_v2", pretrained: bool = False, taps: Sequence[int] = MOBILENET_V2_TAPS,
        last_stride: int = 2,
    ) -> None:
        super().__init__()
        self.name = name
        net = torchvision.models.mobilenet_v2(weights="IMAGENET1K_V1" if pretrained else None)
        self.taps = tuple(int(t) for t in taps)
        if len(self.taps) != 4 or list(self.taps) != sorted(set(self.taps)) or self.taps[-1] >= len(net.features):
            raise ValueError(f"taps: expected 4 increasing block indices < {len(net.features)}, found {taps}")
        if last_stride not in (1, 2):
            raise ValueError(f"last_stride: expected 1 or 2, found {last_stride}")
        # Blocks after the last tap are dropped (none with the default taps).
        self.features = net.features[: self.taps[-1] + 1]
        if last_stride == 1 and len(self.features) > self.LAST_DOWN:
            self.features[self.LAST_DOWN].conv[1][0].stride = (1, 1)  # the depthwise 3×3 of the last stride-2 block
        self.last_stride = last_stride
        self.channels = tuple(self._block_channels(self.features[t]) for t in self.taps)
        self.strides = ((4, 8, 16, 32 if last_stride == 2 else 16) if self.taps == MOBILENET_V2_TAPS else ())

    #: The last stride-2 block of ``mobilenet_v2().features`` (160 channels, stride 16 → 32).
    LAST_DOWN = 14

    @staticmethod
    def _block_channels(block: nn.Module) -> int:
        if hasattr(block, "out_channels"):
            return int(block.out_channels)
        convs = [m for m in block.modules() if isinstance(m, nn.Conv2d)]
        return int(convs[-1].out_channels)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for i, block in enumerate(self.features):
            x = block(x)
            if i in self.taps:
                out.append(x)
        return out

    def weights_target(self) -> nn.Module:
        return self.features

    def split(self) -> tuple[nn.Module, nn.Module]:
        """``(stem, body)``: blocks up to the first tap (0–3, stride 4, 24 channels: FTWA's E_L / E_H) and the
        blocks after it to the last tap (E_ID); the modules are shared with this backbone, not copied."""
        cut = self.taps[0] + 1
        return self.features[:cut], self.features[cut:]

    @staticmethod
    def checkpoint_key_map(key: str) -> str | None:
        # torchvision's full-model checkpoints name the blocks 'features.N...'.
        return key[len("features.") :] if key.startswith("features.") else key


#: Backbone classes by name: every timm ``hrnet_*`` model, the torchvision ResNets, ``mobilenet_v2``.
BACKBONES = Registry("backbone")
for _n in timm.list_models("hrnet*"):
    BACKBONES.register(_n, HRNetBackbone)
for _n in RESNETS:
    BACKBONES.register(_n, ResNetBackbone)
BACKBONES.register("mobilenet_v2", MobileNetV2Backbone)


def is_backbone_name(name: str) -> bool:
    """Whether :func:`build_backbone` knows ``name``."""
    return name in BACKBONES


def build_backbone(
    name: str = "hrnet_w32", weights: str | None = "none", **kwargs
) -> tuple[nn.Module, tuple[int, ...]]:
    """Build a 4-level backbone and apply a weight source.

    Args:
        name: ``'hrnet_w32'`` (or any timm ``hrnet_*``), ``'resnet50'`` (or another torchvision
            ResNet) or ``'mobilenet_v2'``.
        weights: ``'none'`` | ``'hub'`` | ``'file:<path>'`` | ``'deep-sort-mobilenetv2'``
            (MobileNetV2 only), see :mod:`lib.models.weights`.
        **kwargs: passed to the backbone class (``last_stride`` for ResNets, ``taps`` for
            MobileNetV2).

    Returns:
        ``(module, channels)``; ``module.load_report`` holds the :class:`LoadReport` of a
        ``file:``/``deep-sort-mobilenetv2`` load (else ``None``).

    Raises:
        ValueError: unknown name, or a weight source that does not fit the backbone.
        RuntimeError: ``'hub'`` download failed (message lists the offline alternatives).
        FileNotFoundError: ``'file:'`` path does not exist.
    """
    spec = parse_weights(weights)
    cls = BACKBONES.get(name)
    if spec.kind == "deep-sort-mobilenetv2" and cls is not MobileNetV2Backbone:
        raise ValueError(f"weights='deep-sort-mobilenetv2' only fits mobilenet_v2, not {name!r}")
    if weights_skipped():  # its tensors are about to be overwritten (a finished run's model.pt): nothing is fetched
        spec = parse_weights("none")
    if spec.kind == "hub":
        module = hub_call(lambda: cls(name, pretrained=True, **kwargs), name)
    else:
        module = cls(name, pretrained=False, **kwargs)
    report: LoadReport | None = None
    if spec.kind == "file":
        assert spec.path is not None
        target = module.weights_target()
        source = read_checkpoint(spec.path)
        report = load_state_dict_into(target, source, source=str(spec.path), key_map=module.checkpoint_key_map,
                                      ignore_prefixes=module.checkpoint_ignore_prefixes)
        check_matched_share(report, target, backbone=name, source_keys=list(source))
    elif spec.kind == "deep-sort-mobilenetv2":
        report = load_deep_sort_mobilenetv2(module.weights_target())
    module.load_report = report
    return module, tuple(module.channels)
