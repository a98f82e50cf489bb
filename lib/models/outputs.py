"""The output of the re-ID models: ``ReIDOutput(seq, feat, logits)``."""

from __future__ import annotations

from typing import NamedTuple

import torch

__all__ = ["ReIDOutput"]


class ReIDOutput(NamedTuple):
    """What every re-ID model in :mod:`lib.models` returns (train and eval mode alike).

    Attributes:
        seq: embeddings used by the triplet loss. HRNet-ReID: ``[Seq1, Seq2, Seq3, Seq4, Seq5]``
            (PS-HRNet Eq. (6) and Fig. 4); the single-embedding baselines: ``[global feature]``.
        feat: ``ℓ_f`` (HRNet-ReID: output of FC_1) or the baselines' (BN-neck) feature.
        logits: ``ℓ_c``, the identity scores.
    """

    seq: list[torch.Tensor]
    feat: torch.Tensor
    logits: torch.Tensor
