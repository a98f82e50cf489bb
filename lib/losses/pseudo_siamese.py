"""Pseudo-siamese loss ``L_PS`` (PS-HRNet paper Eq. (11)).

    L_PS = Σ_{c ∈ C} || c_h - c_l ||_1,    C ⊆ A = {Seq1, Seq2, Seq3, Seq4, Seq5, ℓ_c},  C ≠ ∅

``c_h`` comes from the frozen teacher HRNet-ReID-H fed the HR image, ``c_l`` from the student
HRNet-ReID-L fed the (super-resolved) LR image. The teacher outputs are **detached**: no gradient
reaches the teacher. Default ``C = {Seq1, Seq4, Seq5, ℓ_c}`` (paper Table VII's best, used in the
paper's experiments). Each ``||·||_1`` is the mean absolute error over the batch and the feature
elements (``nn.L1Loss``, as in the authors' code; ``reduction='sum'`` gives the literal norm summed
over the batch). Computed in float32.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from ._outputs import SEQ_NAMES, get_part

__all__ = ["PseudoSiameseLoss", "PS_COMPONENTS", "DEFAULT_PS_COMPONENTS"]

#: The ordered set ``A`` of PS-HRNet Eq. (11).
PS_COMPONENTS: tuple[str, ...] = SEQ_NAMES + ("logits",)
#: Paper default ``C = {Seq1, Seq4, Seq5, ℓ_c}`` (Table VII).
DEFAULT_PS_COMPONENTS: tuple[str, ...] = ("seq1", "seq4", "seq5", "logits")


def validate_components(components: Sequence[str]) -> tuple[str, ...]:
    """Check ``C``: non-empty, no duplicates, every name in :data:`PS_COMPONENTS`."""
    if isinstance(components, str):
        components = (components,)
    names = tuple(components)
    if not names:
        raise ValueError(f"components: C must not be empty (PS-HRNet Eq. (11)); valid names: {list(PS_COMPONENTS)}")
    for n in names:
        if n not in PS_COMPONENTS:
            raise ValueError(f"components: unknown name {n!r}; valid names: {list(PS_COMPONENTS)}")
    if len(set(names)) != len(names):
        raise ValueError(f"components: duplicate names in {list(names)}")
    # Keep the order of A, whatever order was given.
    return tuple(n for n in PS_COMPONENTS if n in names)


class PseudoSiameseLoss(nn.Module):
    """``L_PS`` of PS-HRNet Eq. (11).

    Args:
        components: the subset ``C`` of ``('seq1', ..., 'seq5', 'logits')`` (default
            ``('seq1', 'seq4', 'seq5', 'logits')``).
        reduction: ``'mean'`` (default) | ``'sum'``, see the module docstring.

    ``forward(teacher_out, student_out)`` returns ``(loss, parts)`` with ``parts['ps_<name>']``
    the detached per-component L1 terms.
    """

    def __init__(
        self,
        components: Sequence[str] = DEFAULT_PS_COMPONENTS,
        reduction: Literal["mean", "sum"] = "mean",
    ) -> None:
        super().__init__()
        if reduction not in ("mean", "sum"):
            raise ValueError(f"reduction: expected 'mean' or 'sum', found {reduction!r}")
        self.components = validate_components(components)
        self.reduction = reduction

    def forward(self, teacher_out: Any, student_out: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        terms = []
        parts: dict[str, torch.Tensor] = {}
        for name in self.components:
            t = get_part(teacher_out, name).detach().float()
            s = get_part(student_out, name).float()
            if t.shape != s.shape:
                raise ValueError(f"{name}: teacher {tuple(t.shape)} and student {tuple(s.shape)} differ")
            term = F.l1_loss(s, t, reduction=self.reduction)
            parts[f"ps_{name}"] = term.detach()
            terms.append(term)
        return torch.stack(terms).sum(), parts

    def extra_repr(self) -> str:
        return f"components={self.components!r}, reduction={self.reduction!r}"
