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
* ``timm:<model>`` (:class:`TimmBackbone`): any timm model through ``features_only=True``, its last 4 feature
  levels (``timm:resnet18``: ``layer1..layer4``, 64/128/256/512 channels at strides 4–32;
  ``timm:mobilenetv3_small_100``: 16/24/48/576). ``timm:hrnet_w32`` is timm's plain HRNet features (stage outputs,
  no ``incre`` bottlenecks), not the paper's ``hrnet_w32`` above.

Two-stream methods (FTWA) cut a backbone in two with ``split()``: a *stem* up to the end of the first
level (ResNet: ``conv1`` … ``layer1``; MobileNetV2: blocks 0–3, also stride 4) and a *body* (the rest, to
the last level). HRNet's parallel branches have no such cut and do not offer it.

Weight sources (``weights=``): see :mod:`lib.models.weights`; a ``file:`` holding a whole torchreid / fast-reid /
reid-strong-baseline model loads its backbone (:mod:`lib.models.reid_checkpoints`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import timm
import torch
import torchvision
from torch import nn

from ..core.registry import Registry

from .reid_checkpoints import checkpoint_layout
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
    "TimmBackbone",
    "TIMM_PREFIX",
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


#: The prefix of the backbone names of :class:`TimmBackbone`: ``timm:<any timm model>``.
TIMM_PREFIX = "timm:"


def _canonical(key: str) -> str:
    """A key with the dots of nested names flattened: timm's ``features_only`` wrappers rename ``stages.0`` to
    ``stages_0`` (``FeatureListNet``) or hold the model under ``model.`` (``FeatureGetterNet``)."""
    return (key[len("model."):] if key.startswith("model.") else key).replace(".", "_")


class TimmBackbone(nn.Module):
    """Any timm model as a feature pyramid: ``timm.create_model(model, features_only=True)``, its last 4 levels.

    Args:
        name: ``'timm:<model>'`` (a timm model name, with or without a pretrained tag: ``timm:resnet18.a1_in1k``).
        pretrained: timm's ImageNet weights (``weights='hub'``, downloaded from the Hugging Face hub).
        out_indices: timm's ``out_indices`` (which feature levels; then every level asked for is returned); by
            default timm's levels and the last 4 of them kept — what :class:`~lib.models.ReIDHead`'s 4 grids need.

    ``channels`` and ``strides`` come from ``feature_info.channels()`` / ``.reduction()``. ``file:`` weights may be
    timm's own checkpoint (``pytorch_model.bin`` or ``model.safetensors``) or any state
    dict named as the timm model: a key is matched to the ``features_only`` module's key with the same
    :func:`_canonical` name, and the classification model's tensors the features module leaves out (``fc``,
    ``head``, ``conv_head``, ``classifier`` …, found by building the classification model on the ``meta`` device)
    are ignored.

    Raises:
        ValueError: the model has fewer than 4 feature levels (and no ``out_indices``), or no ``features_only``.
    """

    checkpoint_ignore_prefixes: tuple[str, ...] = ()
    LEVELS = 4

    def __init__(self, name: str, pretrained: bool = False, out_indices: Sequence[int] | None = None) -> None:
        super().__init__()
        if not name.startswith(TIMM_PREFIX):
            raise ValueError(f"TimmBackbone: expected a name 'timm:<model>', found {name!r}")
        self.name, self.timm_name = name, name[len(TIMM_PREFIX):]
        extra = {} if out_indices is None else {"out_indices": tuple(int(i) for i in out_indices)}
        try:
            self.body = timm.create_model(self.timm_name, features_only=True, pretrained=pretrained, **extra)
        except Exception as e:
            if pretrained:
                raise  # build_backbone's hub_call names the download failure and the offline sources
            asked = f", out_indices={extra['out_indices']}" if extra else ""
            raise ValueError(f"backbone {name!r}: timm cannot build {self.timm_name!r} with features_only=True{asked} "
                             f"({type(e).__name__}: {str(e)[:200]})") from e
        channels = [int(c) for c in self.body.feature_info.channels()]
        strides = [int(r) for r in self.body.feature_info.reduction()]
        if out_indices is None and len(channels) < self.LEVELS:
            raise ValueError(f"backbone {name!r}: timm gives {len(channels)} feature levels (strides {strides}), "
                             f"the head needs {self.LEVELS}; pass out_indices to choose them")
        self.skip = 0 if out_indices is not None else len(channels) - self.LEVELS
        self.channels: tuple[int, ...] = tuple(channels[self.skip:])
        self.strides: tuple[int, ...] = tuple(strides[self.skip:])
        self._names_cache: tuple[frozenset[str], dict[str, str], frozenset[str]] | None = None

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return list(self.body(x))[self.skip:]

    def weights_target(self) -> nn.Module:
        return self.body

    def _names(self) -> tuple[frozenset[str], dict[str, str], frozenset[str]]:
        """``(own keys, canonical name -> own key, canonical names of the classification model's tensors that the
        features module lacks)``, computed on the first ``file:`` load."""
        if self._names_cache is None:
            own = list(self.body.state_dict())
            canon = [_canonical(k) for k in own]
            shared = {c for c, n in Counter(canon).items() if n > 1}  # ambiguous flattenings: exact names only
            index = {c: k for c, k in zip(canon, own) if c not in shared}
            with torch.device("meta"):  # no memory, no init cost: only the names are wanted
                full = timm.create_model(self.timm_name, pretrained=False)
            head = frozenset(c for c in map(_canonical, full.state_dict()) if c not in index)
            self._names_cache = (frozenset(own), index, head)
        return self._names_cache

    def checkpoint_key_map(self, key: str) -> str | None:
        """The ``features_only`` module's key for a checkpoint key named as the timm model (``None``: a tensor of
        the classification head, ignored; unknown keys pass unchanged, to be reported unexpected)."""
        own, index, head = self._names()
        if key in own:
            return key
        c = _canonical(key)
        if c in index:
            return index[c]
        return None if c in head else key


def _is_timm_model(rest: str) -> bool:
    return bool(rest) and timm.is_model(rest)


#: Backbone classes by name: every timm ``hrnet_*`` model, the torchvision ResNets, ``mobilenet_v2``, and the family
#: ``timm:<model>`` (:class:`TimmBackbone`, any timm model).
BACKBONES = Registry("backbone")
for _n in timm.list_models("hrnet*"):
    BACKBONES.register(_n, HRNetBackbone)
for _n in RESNETS:
    BACKBONES.register(_n, ResNetBackbone)
BACKBONES.register("mobilenet_v2", MobileNetV2Backbone)
BACKBONES.register_family(TIMM_PREFIX, TimmBackbone, _is_timm_model, "a timm model name (timm.list_models())")


def is_backbone_name(name: str) -> bool:
    """Whether :func:`build_backbone` knows ``name``."""
    return name in BACKBONES


def build_backbone(
    name: str = "hrnet_w32", weights: str | None = "none", **kwargs
) -> tuple[nn.Module, tuple[int, ...]]:
    """Build a 4-level backbone and apply a weight source.

    Args:
        name: ``'hrnet_w32'`` (or any timm ``hrnet_*``), ``'resnet50'`` (or another torchvision
            ResNet), ``'mobilenet_v2'`` or ``'timm:<model>'`` (any timm model, :class:`TimmBackbone`).
        weights: ``'none'`` | ``'hub'`` | ``'file:<path>'`` | ``'deep-sort-mobilenetv2'``
            (MobileNetV2 only), see :mod:`lib.models.weights`. A ``file:`` may hold a whole torchreid / fast-reid /
            reid-strong-baseline model: its backbone loads, its heads are ignored
            (:mod:`lib.models.reid_checkpoints`).
        **kwargs: passed to the backbone class (``last_stride`` for ResNets, ``taps`` for
            MobileNetV2, ``out_indices`` for ``timm:`` models).

    Returns:
        ``(module, channels)``; ``module.load_report`` holds the :class:`LoadReport` of a
        ``file:``/``deep-sort-mobilenetv2`` load (else ``None``).

    Raises:
        ValueError: unknown name, a weight source that does not fit the backbone, a ``file:`` that fills too few of
            its tensors (:func:`~lib.models.weights.check_matched_share`) or pickles objects beyond tensors.
        RuntimeError: ``'hub'`` download failed (message lists the offline alternatives); a ``file:`` none of whose
            tensors matches.
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
        layout = checkpoint_layout(source)  # a re-ID toolbox's whole model: its backbone's keys, its heads ignored
        key_map = layout.key_map(module.checkpoint_key_map, keep=set(target.state_dict()))
        report = load_state_dict_into(target, source, source=str(spec.path), key_map=key_map,
                                      ignore_prefixes=module.checkpoint_ignore_prefixes, layout=layout.describe())
        check_matched_share(report, target, backbone=name, source_keys=list(source))
    elif spec.kind == "deep-sort-mobilenetv2":
        report = load_deep_sort_mobilenetv2(module.weights_target())
    module.load_report = report
    return module, tuple(module.channels)
