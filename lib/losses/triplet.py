"""Batch-hard triplet loss (Hermans et al. 2017; PS-HRNet paper Eq. (7)).

For every anchor ``a`` of a ``P x K`` batch, the hardest positive (largest distance, same
identity) and the hardest negative (smallest distance, other identity) give

    [m + max_p ||f_a - f_p||_2 - min_n ||f_a - f_n||_2]_+ .

PS-HRNet Eq. (7) sums this over the anchors (and over the sequences ``t``: the ``triplet`` term of
:mod:`lib.methods.pshrnet.losses`);
as in the authors' code and every public implementation the default here is the *mean* over the
anchors (``reduction='sum'`` gives PS-HRNet Eq. (7) literally).

Choices (all options):

* Distance: plain Euclidean distance between the features *as given* (``normalize=False``, the
  default; the paper and the authors' code do not normalise). ``normalize=True`` L2-normalises
  them first.
* Margin ``m``: 0.1 (paper, Implementation details); the authors' code uses 0.3.
* Anchors whose identity has no other sample in the batch (no positive) are **skipped**
  (``no_positive='skip'``, default): they are left out of the mean, and a batch without any
  valid anchor gives a zero loss that still carries a (zero) gradient. ``no_positive='self'``
  reproduces torchreid / the authors' code, where the anchor itself counts as its hardest positive
  (distance 0), so such an anchor only pushes its nearest negative beyond the margin.
  Anchors with no negative (a batch of a single identity) are always skipped.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["DISTANCE_DTYPE", "TripletLoss", "batch_hard_triplet_loss", "pairwise_euclidean"]

#: The dtype of the batch-hard distances, recorded in every run's ``metrics.json`` (``loss_distances``). Runs
#: finished before it was recorded computed ``x @ x.t()`` under the run's autocast, i.e. in bf16 where
#: ``PRECISION`` resolved to bf16: ``|a|² + |b|² − 2a·b`` then loses about 2⁻⁸ of ``|a|²``, which for ReLU features
#: with a large common part is more than the margin (docs/deviations.md, "Numerics").
DISTANCE_DTYPE = "float32"

NoPositive = Literal["skip", "self"]


def pairwise_euclidean(x: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """``(B, B)`` Euclidean distances of the rows of ``x`` (float32, ``sqrt(clamp(d², eps))``).

    The clamp keeps the gradient finite on the diagonal (and for duplicate rows). Autocast is switched off here:
    under a bf16 autocast the Gram matrix ``x @ x.t()`` would be computed in bf16 whatever ``x``'s dtype, and the
    cancellation in ``|a|² + |b|² − 2a·b`` would leave errors larger than the triplet margin.
    """
    with torch.autocast(device_type=x.device.type, enabled=False):
        x = x.float()
        sq = x.pow(2).sum(dim=1)
        d2 = sq[:, None] + sq[None, :] - 2.0 * (x @ x.t())
        return d2.clamp(min=eps).sqrt()


def batch_hard_triplet_loss(
    features: torch.Tensor,
    targets: torch.Tensor,
    margin: float = 0.1,
    normalize: bool = False,
    no_positive: NoPositive = "skip",
    reduction: Literal["mean", "sum", "none"] = "mean",
) -> torch.Tensor:
    """Batch-hard triplet loss of one embedding, PS-HRNet Eq. (7) for a single ``t``.

    Args:
        features: ``(B, D)`` (or ``(B, ...)``, flattened) embeddings, e.g. ``Seq^(t)``; any
            float dtype, computed in float32.
        targets: ``(B,)`` identity labels.
        margin: ``m`` (paper 0.1, authors' code 0.3).
        normalize: L2-normalise the features before the distances (default ``False``).
        no_positive: ``'skip'`` (default) or ``'self'``, see the module docstring.
        reduction: ``'mean'`` over the valid anchors (default), ``'sum'`` or ``'none'``
            (``(B,)`` per-anchor losses, 0 for skipped anchors).

    Returns:
        A float32 scalar (``(B,)`` for ``reduction='none'``).
    """
    if features.ndim < 2:
        raise ValueError(f"features: expected shape (B, D), found {tuple(features.shape)}")
    b = features.shape[0]
    if targets.shape != (b,):
        raise ValueError(f"targets: expected shape ({b},), found {tuple(targets.shape)}")
    if no_positive not in ("skip", "self"):
        raise ValueError(f"no_positive: expected 'skip' or 'self', found {no_positive!r}")
    x = features.reshape(b, -1).float()
    if normalize:
        x = F.normalize(x, dim=1)
    dist = pairwise_euclidean(x)
    same = targets[:, None] == targets[None, :]
    eye = torch.eye(b, dtype=torch.bool, device=x.device)
    pos_mask = same & ~eye
    neg_mask = ~same
    has_pos = pos_mask.any(dim=1)
    has_neg = neg_mask.any(dim=1)
    if no_positive == "self":
        # The anchor is its own (distance 0) positive, as in torchreid's TripletLoss.
        d_ap = torch.where(pos_mask, dist, torch.zeros_like(dist)).amax(dim=1)
        valid = has_neg
    else:
        d_ap = torch.where(pos_mask, dist, torch.full_like(dist, float("-inf"))).amax(dim=1)
        valid = has_pos & has_neg
    d_an = torch.where(neg_mask, dist, torch.full_like(dist, float("inf"))).amin(dim=1)
    per_anchor = F.relu(margin + d_ap - d_an)
    # Zero (with a graph) for the skipped anchors; where() keeps inf/nan out of the gradient.
    per_anchor = torch.where(valid, per_anchor, x.sum(dim=1) * 0.0)
    if reduction == "none":
        return per_anchor
    if reduction == "sum":
        return per_anchor.sum()
    if reduction == "mean":
        return per_anchor.sum() / valid.sum().clamp(min=1)
    raise ValueError(f"reduction: expected 'mean', 'sum' or 'none', found {reduction!r}")


class TripletLoss(nn.Module):
    """Module form of :func:`batch_hard_triplet_loss` (PS-HRNet Eq. (7), one sequence).

    Args:
        margin: ``m`` (default 0.1, paper; authors' code 0.3).
        normalize: L2-normalise features first (default ``False``).
        no_positive: ``'skip'`` (default) | ``'self'``.
        reduction: ``'mean'`` (default) | ``'sum'`` | ``'none'``.
    """

    def __init__(
        self,
        margin: float = 0.1,
        normalize: bool = False,
        no_positive: NoPositive = "skip",
        reduction: Literal["mean", "sum", "none"] = "mean",
    ) -> None:
        super().__init__()
        self.margin = float(margin)
        self.normalize = bool(normalize)
        self.no_positive = no_positive
        self.reduction = reduction

    def forward(self, features: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return batch_hard_triplet_loss(
            features, targets, self.margin, self.normalize, self.no_positive, self.reduction
        )

    def extra_repr(self) -> str:
        return (
            f"margin={self.margin}, normalize={self.normalize}, "
            f"no_positive={self.no_positive!r}, reduction={self.reduction!r}"
        )
