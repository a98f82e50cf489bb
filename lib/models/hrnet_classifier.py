"""HRNet-W32-C with its own ImageNet classification head, the Table VI baseline of the paper.

timm's ``hrnet_w32`` classification model (the official HRNet-Image-Classification network):
incre modules → down-sampling path → ``final_layer`` (2048 channels) → global average pool →
``classifier`` re-sized to ``num_classes``. The re-ID feature is the pooled 2048-d vector (the
input of the classifier), used for the triplet loss (``seq = [pooled]``) and as the test feature.
"""

from __future__ import annotations

import timm
import torch
from torch import nn

from .outputs import ReIDOutput
from .reid_checkpoints import checkpoint_layout
from .weights import (
    check_matched_share,
    hrnet_official_to_timm,
    hub_call,
    load_state_dict_into,
    parse_weights,
    read_checkpoint,
    weights_skipped,
)

__all__ = ["HRNetClassifier"]


class HRNetClassifier(nn.Module):
    """HRNet-W32-C baseline (Table VI).

    Args:
        num_classes: number of training identities.
        backbone: timm HRNet name (``'hrnet_w32'``).
        weights: ``'none'`` | ``'hub'`` | ``'file:<path>'`` (an official HRNet-Image-Classification
            or timm checkpoint; the 1000-class ``classifier`` does not fit and is reported as a
            shape mismatch, the rest loads; a whole re-ID model's file loads its backbone as for
            :func:`~lib.models.build_backbone`, :mod:`lib.models.reid_checkpoints`).
        drop_rate: dropout before the classifier (timm's ``drop_rate``, 0).

    ``forward(x)`` returns :class:`ReIDOutput` with ``seq = [pooled]``, ``feat = pooled`` (2048-d)
    and ``logits``; the test feature is ``pooled``.
    """

    def __init__(
        self, num_classes: int, backbone: str = "hrnet_w32", weights: str | None = "none", drop_rate: float = 0.0
    ) -> None:
        super().__init__()
        if not backbone.startswith("hrnet"):
            raise ValueError(f"HRNetClassifier needs a timm 'hrnet_*' model, found {backbone!r}")
        spec = parse_weights(weights)
        if spec.kind == "deep-sort-mobilenetv2":
            raise ValueError("weights='deep-sort-mobilenetv2' only fits mobilenet_v2")

        def make(pretrained: bool) -> nn.Module:
            return timm.create_model(backbone, pretrained=pretrained, num_classes=num_classes, drop_rate=drop_rate)

        if weights_skipped():  # a finished run's model.pt overwrites every tensor: nothing is fetched
            spec = parse_weights("none")
        self.backbone_name = backbone
        self.model = hub_call(lambda: make(True), backbone) if spec.kind == "hub" else make(False)
        self.load_report = None
        if spec.kind == "file":
            assert spec.path is not None
            source = read_checkpoint(spec.path)
            # a whole re-ID model (fast-reid's backbone., a wrapper prefix) as for the ReID backbones; the
            # classifier is this model's own, so a file's classifier is offered to it (a shape mismatch for 1000)
            layout = checkpoint_layout(source)
            key_map = layout.key_map(hrnet_official_to_timm, keep=set(self.model.state_dict()))
            self.load_report = load_state_dict_into(self.model, source, source=str(spec.path), key_map=key_map,
                                                    layout=layout.describe())
            check_matched_share(self.load_report, self.model, backbone=backbone, source_keys=list(source))
        self.feat_dim = int(self.model.num_features)

    @property
    def test_dim(self) -> int:
        return self.feat_dim

    def forward(self, x: torch.Tensor) -> ReIDOutput:
        pooled = self.model.forward_head(self.model.forward_features(x), pre_logits=True)
        logits = self.model.classifier(pooled)
        return ReIDOutput(seq=[pooled], feat=pooled, logits=logits)

    def test_feature(self, out: ReIDOutput) -> torch.Tensor:
        return out.feat

    def extract(self, x: torch.Tensor) -> torch.Tensor:
        return self.test_feature(self(x))
