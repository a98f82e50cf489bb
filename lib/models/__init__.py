"""Models of PS-HRNet (IEEE TIP) and the baselines, one concept a file.

* :mod:`~lib.models.vdsr_ca` — VDSR-CA, the SR module ``G`` (Sec. III-B, Eqs. (2)-(4));
* :mod:`~lib.models.reid_head` — the HRNet-ReID head (Sec. III-C, Eq. (6), Fig. 4);
* :mod:`~lib.models.hrnet_reid` — HRNet-ReID = backbone + head;
* :mod:`~lib.models.backbones` — 4-level backbones (timm HRNet, torchvision ResNet / MobileNetV2);
* :mod:`~lib.models.hrnet_classifier` — HRNet-W32-C with its classification head (Table VI);
* :mod:`~lib.models.resnet_reid` — the ResNet-50 BNNeck re-ID baseline;
* :mod:`~lib.models.weights` — weight sources (``'none'``, ``'hub'``, ``'file:<path>'``,
  ``'deep-sort-mobilenetv2'``) and checkpoint key mapping;
* :mod:`~lib.models.embedder` — the test-time feature extractor.
"""

from .backbones import MOBILENET_V2_TAPS, HRNetBackbone, MobileNetV2Backbone, ResNetBackbone, build_backbone
from .embedder import ReIDEmbedder
from .hrnet_classifier import HRNetClassifier
from .hrnet_reid import HRNetReID
from .outputs import ReIDOutput
from .reid_head import DEFAULT_GRIDS, DEFAULT_LAMBDAS, ReIDHead
from .resnet_reid import ResNet50ReID
from .vdsr_ca import VDSRCA, ChannelAttention
from .weights import LoadReport, hrnet_official_to_timm, hrnet_timm_to_official, parse_weights

__all__ = [
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
    "MOBILENET_V2_TAPS",
    "LoadReport",
    "parse_weights",
    "hrnet_official_to_timm",
    "hrnet_timm_to_official",
]
