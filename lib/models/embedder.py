"""``ReIDEmbedder``: a re-ID model (optionally behind the SR module) as a tensor-returning module.

At test time PS-HRNet feeds query and gallery images alike through VDSR-CA and HRNet-ReID-L and
uses ``concat(Seq5, ℓ_f)`` (paper Sec. III-E). ``ReIDEmbedder(model, sr)`` computes exactly that,
``model.test_feature(model(sr(x)))``, and returns a ``(B, D)`` tensor, the interface
:func:`lib.metrics.features.extract_features` expects (flip-averaging and L2 normalisation are
done there).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ReIDEmbedder"]


class ReIDEmbedder(nn.Module):
    """``x -> model.test_feature(model(sr(x)))``.

    Args:
        model: a model of :mod:`lib.models` (has ``test_feature``).
        sr: an optional image-to-image module applied first (VDSR-CA); ``None`` for HR-only models.
    """

    def __init__(self, model: nn.Module, sr: nn.Module | None = None) -> None:
        super().__init__()
        if not hasattr(model, "test_feature"):
            raise TypeError(f"{type(model).__name__} has no test_feature()")
        self.sr = sr
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.sr is not None:
            x = self.sr(x)
        return self.model.test_feature(self.model(x))
