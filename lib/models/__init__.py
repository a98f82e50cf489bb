"""Models of PS-HRNet (IEEE TIP) and the baselines, one concept a file.

* :mod:`~lib.models.sr` — SR modules ``G`` by name (:data:`SR_MODULES`): VDSR-CA (Sec. III-B, PS-HRNet Eqs. (2)-(4));
* :mod:`~lib.models.hrnet_reid_head` — the HRNet-ReID head (Sec. III-C, PS-HRNet Eq. (6), Fig. 4);
* :mod:`~lib.models.hrnet_reid` — HRNet-ReID = backbone + head;
* :mod:`~lib.models.heads` — re-ID models by head name (:data:`HEADS`);
* :mod:`~lib.models.backbones` — 4-level backbones by name (:data:`BACKBONES`: timm HRNet, torchvision ResNet /
  MobileNetV2, ``timm:<model>`` for any timm model);
* :mod:`~lib.models.hrnet_classifier` — HRNet-W32-C with its classification head (Table VI);
* :mod:`~lib.models.resnet_reid` — the ResNet-50 BNNeck re-ID baseline;
* :mod:`~lib.models.weights` — weight sources (``'none'``, ``'hub'``, ``'file:<path>'``,
  ``'deep-sort-mobilenetv2'``) and checkpoint key mapping;
* :mod:`~lib.models.reid_checkpoints` — the backbone's keys in torchreid / fast-reid / reid-strong-baseline files;
* :mod:`~lib.models.embedder` — the test-time feature extractor.
"""

from .backbones import (BACKBONES, MOBILENET_V2_TAPS, HRNetBackbone, MobileNetV2Backbone, ResNetBackbone, TimmBackbone,
                        build_backbone)
from .embedder import ReIDEmbedder
from .hrnet_classifier import HRNetClassifier
from .hrnet_reid import HRNetReID
from .outputs import ReIDOutput
from .hrnet_reid_head import DEFAULT_GRIDS, DEFAULT_LAMBDAS, ReIDHead
from .resnet_reid import ResNet50ReID
from .heads import HEADS, build_reid_model
from .sr import SR_MODULES, VDSRCA, ChannelAttention, build_sr
from .weights import LoadReport, hrnet_official_to_timm, hrnet_timm_to_official, parse_weights

__all__ = [
    "BACKBONES",
    "HEADS",
    "SR_MODULES",
    "build_reid_model",
    "build_sr",
    "VDSRCA",
    "ChannelAttention",
    "ReIDHead",
    "ReIDOutput",
    "DEFAULT_GRIDS",
    "DEFAULT_LAMBDAS",
    "HRNetReID",
    "HRNetClassifier",
    "ResNet50ReID",
    "ReIDEmbedder",
    "build_backbone",
    "HRNetBackbone",
    "ResNetBackbone",
    "MobileNetV2Backbone",
    "TimmBackbone",
    "MOBILENET_V2_TAPS",
    "LoadReport",
    "parse_weights",
    "hrnet_official_to_timm",
    "hrnet_timm_to_official",
]
