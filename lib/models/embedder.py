"""``ReIDEmbedder``: a re-ID model (optionally behind the SR module) as a tensor-returning module.

At test time PS-HRNet feeds query and gallery images alike through VDSR-CA and HRNet-ReID-L and
uses ``concat(Seq5, ℓ_f)`` (paper Sec. III-E). ``ReIDEmbedder(model, sr)`` computes exactly that,
``model.test_feature(model(sr(x)))``, and returns a ``(B, D)`` tensor, the interface
:func:`lib.metrics.features.extract_features` expects (flip-averaging and L2 normalisation are
done there).

Which feature is tested is an option (``feature``), because the paper's choice concatenates the
unnormalised 6144-d ``Seq5`` (activations of order 1–10) with the batch-normalised 512-d ``ℓ_f``
(order 1), so after the final L2 normalisation ``Seq5`` dominates the distance:

* ``'concat'`` (paper, default): ``concat(Seq5, ℓ_f)``;
* ``'feat'``: ``ℓ_f`` alone, the BN feature (BNNeck's test feature, Luo et al. 2019: FC_1 ends in
  BatchNorm1d and ℓ_c is computed from it, while the triplet loss sees the pre-BN ``Seq`` vectors);
* ``'seq5'``: ``Seq5`` alone;
* ``'concat_norm'``: ``concat(Seq5/‖Seq5‖, ℓ_f/‖ℓ_f‖)``, both parts weighted equally.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ReIDEmbedder", "TEST_FEATURES"]

TEST_FEATURES = ("concat", "feat", "seq5", "concat_norm")


class ReIDEmbedder(nn.Module):
    """``x -> feature(model(sr(x)))``.

    Args:
        model: a model of :mod:`lib.models` (has ``test_feature``).
        sr: an optional image-to-image module applied first (VDSR-CA); ``None`` for HR-only models.
        feature: which representation is returned, one of :data:`TEST_FEATURES` (``'concat'``: the model's
            own ``test_feature``, the paper's ``concat(Seq5, ℓ_f)`` for HRNet-ReID).
    """

    def __init__(self, model: nn.Module, sr: nn.Module | None = None, feature: str = "concat") -> None:
        super().__init__()
        if not hasattr(model, "test_feature"):
            raise TypeError(f"{type(model).__name__} has no test_feature()")
        if feature not in TEST_FEATURES:
            raise ValueError(f"ReIDEmbedder: feature must be one of {TEST_FEATURES}, found {feature!r}")
        self.sr = sr
        self.model = model
        self.feature = feature

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.sr is not None:
            x = self.sr(x)
        out = self.model(x)
        if self.feature == "concat":
            return self.model.test_feature(out)
        if self.feature == "feat":
            return out.feat
        if self.feature == "seq5":
            return out.seq[-1]
        return torch.cat([F.normalize(out.seq[-1].float(), dim=1), F.normalize(out.feat.float(), dim=1)], dim=1)
