"""Cross entropy with label smoothing (PS-HRNet paper, Eqs. (8)-(9)).

PS-HRNet Eq. (9) smooths the one-hot target of ``M`` classes to

    q(y) = 1 - (M - 1) / M * eps   if y is the true label,   eps / M   otherwise,

which is the same as ``(1 - eps) * one_hot + eps / M`` (Szegedy et al.; the torchreid /
"bag of tricks" ``CrossEntropyLabelSmooth`` the authors' code uses).

PS-HRNet Eq. (8) writes the loss as a *sum* over the ``P x K`` images of a batch; like the authors' code
(and every public re-ID code base) the default here is the *mean* over the batch
(``reduction='sum'`` gives PS-HRNet Eq. (8) literally). ``lambda_CE = 1.15`` (paper) is tuned for the mean.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["CrossEntropyLabelSmooth", "cross_entropy_label_smooth"]

Reduction = Literal["mean", "sum", "none"]


def cross_entropy_label_smooth(
    logits: torch.Tensor,
    targets: torch.Tensor,
    epsilon: float = 0.1,
    reduction: Reduction = "mean",
) -> torch.Tensor:
    """Label-smoothed cross entropy, PS-HRNet Eqs. (8)-(9).

    Args:
        logits: ``(B, M)`` class scores ``ℓ_c`` (any float dtype; computed in float32).
        targets: ``(B,)`` integer labels in ``[0, M)``.
        epsilon: smoothing ``ε`` in ``[0, 1)``; 0 gives the plain cross entropy.
        reduction: ``'mean'`` over the batch (default, authors' code), ``'sum'`` (PS-HRNet Eq. (8) as
            written) or ``'none'`` (per-sample losses).

    Returns:
        A float32 scalar (or ``(B,)`` for ``reduction='none'``).
    """
    if logits.ndim != 2:
        raise ValueError(f"logits: expected shape (B, M), found {tuple(logits.shape)}")
    if targets.shape != logits.shape[:1]:
        raise ValueError(f"targets: expected shape ({logits.shape[0]},), found {tuple(targets.shape)}")
    if not 0.0 <= epsilon < 1.0:
        raise ValueError(f"epsilon: expected 0 <= epsilon < 1, found {epsilon}")
    num_classes = logits.shape[1]
    log_probs = F.log_softmax(logits.float(), dim=1)
    targets = targets.long()
    # -(sum_y q(y) log p(y)) with q = (1 - eps) one_hot + eps / M, without building the dense q.
    nll = -log_probs.gather(1, targets[:, None]).squeeze(1)
    smooth = -log_probs.mean(dim=1)
    loss = (1.0 - epsilon) * nll + epsilon * smooth
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"reduction: expected 'mean', 'sum' or 'none', found {reduction!r}")


class CrossEntropyLabelSmooth(nn.Module):
    """Module form of :func:`cross_entropy_label_smooth` (PS-HRNet Eqs. (8)-(9)).

    Args:
        epsilon: smoothing ``ε`` (paper: 0.1).
        reduction: ``'mean'`` (default) | ``'sum'`` | ``'none'``.
    """

    def __init__(self, epsilon: float = 0.1, reduction: Reduction = "mean") -> None:
        super().__init__()
        if not 0.0 <= epsilon < 1.0:
            raise ValueError(f"epsilon: expected 0 <= epsilon < 1, found {epsilon}")
        self.epsilon = float(epsilon)
        self.reduction = reduction

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return cross_entropy_label_smooth(logits, targets, self.epsilon, self.reduction)

    def extra_repr(self) -> str:
        return f"epsilon={self.epsilon}, reduction={self.reduction!r}"
