"""HRNet-ReID identity loss ``L_ID`` (PS-HRNet paper Eq. (10)).

    L_ID = λ_CE · L_CE(ℓ_c) + λ_BH · L_BH,     L_BH = R_{t ∈ T} triplet(Seq^(t))

with ``L_CE`` the label-smoothed cross entropy (PS-HRNet Eqs. (8)-(9)), ``triplet`` the batch-hard triplet
loss (PS-HRNet Eq. (7)) and the reduction ``R`` over the chosen sequences ``T``:

* ``triplet_reduction='sum'`` (default): PS-HRNet Eq. (7) sums over ``t = 1..5`` (paper);
* ``triplet_reduction='mean'``: the authors' code averages the branch triplet losses.

Defaults (paper, Implementation details): λ_CE = 1.15, λ_BH = 0.2, m = 0.1, ε = 0.1,
``T = {Seq1, ..., Seq5}``. All losses are computed in float32 (inputs are cast with ``.float()``),
also when the forward pass ran under bf16/fp16 autocast.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
from torch import nn

from ._outputs import SEQ_NAMES, _field, get_part
from .cross_entropy_label_smooth import cross_entropy_label_smooth
from .triplet import NoPositive, batch_hard_triplet_loss

__all__ = ["IDLoss", "parts_to_floats"]


def parts_to_floats(parts: dict[str, torch.Tensor]) -> dict[str, float]:
    """Detached scalar tensors -> Python floats with a single device synchronisation."""
    if not parts:
        return {}
    values = torch.stack([p.detach().float().reshape(()) for p in parts.values()]).tolist()
    return dict(zip(parts.keys(), values))


class IDLoss(nn.Module):
    """``L_ID`` of PS-HRNet Eq. (10).

    Args:
        lambda_ce: weight λ_CE of the label-smoothed cross entropy (paper 1.15).
        lambda_bh: weight λ_BH of the batch-hard triplet term (paper 0.2).
        margin: triplet margin ``m`` (paper 0.1; authors' code 0.3).
        epsilon: label smoothing ``ε`` (0.1).
        triplet_on: the sequences ``T`` the triplet loss is applied to, names ``'seq1'``..``'seq5'``
            (``'feat'`` = ``ℓ_f`` is also accepted), or ``'all'`` = every entry of ``output.seq``
            (for the single-embedding baselines, whose ``seq`` holds one global feature).
        triplet_reduction: ``'sum'`` over ``T`` (PS-HRNet Eq. (7), default) or ``'mean'`` (authors' code).
        normalize: L2-normalise the features inside the triplet loss (default ``False``).
        no_positive: anchors without a positive, see :mod:`lib.losses.triplet` (default ``'skip'``).
        ce_reduction: ``'mean'`` over the batch (default, authors' code) or ``'sum'`` (PS-HRNet Eq. (8)).

    ``forward(output, targets)`` returns ``(total, parts)``; ``parts`` maps ``'ce'``,
    ``'tri_<name>'`` for each ``t ∈ T``, ``'bh'`` (reduced triplet term, before λ_BH) and
    ``'id'`` (= total) to detached float32 scalar tensors (see :func:`parts_to_floats`).
    """

    def __init__(
        self,
        lambda_ce: float = 1.15,
        lambda_bh: float = 0.2,
        margin: float = 0.1,
        epsilon: float = 0.1,
        triplet_on: Sequence[str] | Literal["all"] = SEQ_NAMES,
        triplet_reduction: Literal["sum", "mean"] = "sum",
        normalize: bool = False,
        no_positive: NoPositive = "skip",
        ce_reduction: Literal["mean", "sum"] = "mean",
    ) -> None:
        super().__init__()
        if triplet_reduction not in ("sum", "mean"):
            raise ValueError(f"triplet_reduction: expected 'sum' or 'mean', found {triplet_reduction!r}")
        if isinstance(triplet_on, str):
            if triplet_on != "all":
                raise ValueError(f"triplet_on: expected a list of names or 'all', found {triplet_on!r}")
            self.triplet_on: tuple[str, ...] | Literal["all"] = "all"
        else:
            names = tuple(triplet_on)
            bad = [n for n in names if not (n in SEQ_NAMES or n == "feat")]
            if bad:
                raise ValueError(
                    f"triplet_on: unknown name(s) {bad}; valid: {list(SEQ_NAMES) + ['feat']} or 'all'"
                )
            if len(set(names)) != len(names):
                raise ValueError(f"triplet_on: duplicate names in {list(names)}")
            self.triplet_on = names
        self.lambda_ce = float(lambda_ce)
        self.lambda_bh = float(lambda_bh)
        self.margin = float(margin)
        self.epsilon = float(epsilon)
        self.triplet_reduction = triplet_reduction
        self.normalize = bool(normalize)
        self.no_positive = no_positive
        self.ce_reduction = ce_reduction

    def _triplet_names(self, output: Any) -> tuple[str, ...]:
        if self.triplet_on == "all":
            seq = _field(output, "seq")
            return tuple(f"seq{i + 1}" for i in range(len(seq)))
        return self.triplet_on  # type: ignore[return-value]

    def forward(self, output: Any, targets: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        logits = get_part(output, "logits")
        ce = cross_entropy_label_smooth(logits, targets, self.epsilon, self.ce_reduction)
        parts: dict[str, torch.Tensor] = {"ce": ce.detach()}
        total = self.lambda_ce * ce
        names = self._triplet_names(output)
        if names and self.lambda_bh != 0.0:
            tris = []
            for name in names:
                t = batch_hard_triplet_loss(
                    get_part(output, name),
                    targets,
                    margin=self.margin,
                    normalize=self.normalize,
                    no_positive=self.no_positive,
                )
                parts[f"tri_{name}"] = t.detach()
                tris.append(t)
            bh = torch.stack(tris).sum() if self.triplet_reduction == "sum" else torch.stack(tris).mean()
            parts["bh"] = bh.detach()
            total = total + self.lambda_bh * bh
        parts["id"] = total.detach()
        return total, parts

    def extra_repr(self) -> str:
        return (
            f"lambda_ce={self.lambda_ce}, lambda_bh={self.lambda_bh}, margin={self.margin}, "
            f"epsilon={self.epsilon}, triplet_on={self.triplet_on!r}, "
            f"triplet_reduction={self.triplet_reduction!r}"
        )
