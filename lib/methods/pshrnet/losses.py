"""PS-HRNet's loss terms, their inputs and their configuration (the ``loss`` section), composed by the shared
:class:`~lib.losses.LossComposer` with a stage's weights (PS-HRNet Eq. (12)):

    L_TOTAL = λ_CE · L_CE + λ_BH · L_BH  (= L_ID, PS-HRNet Eq. (10))
              + λ_SR · L_SR (PS-HRNet Eq. (5)) + λ_PS · L_PS (PS-HRNet Eq. (11))

A stage names its terms and weights, e.g. ``{'ce': 1.15, 'triplet': 0.2, 'sr': 0.5, 'ps': 0.5}`` (paper
phase 2); a term with weight 0 is not computed, so any term can be removed (Table II's ID and SR+ID rows). Phase 1
and the baseline train L_ID (PS-HRNet Eq. (10)) as ``{'ce': 1.15, 'triplet': 0.2}``. The terms registered here:

* ``ce`` — label-smoothed cross entropy on ``ℓ_c`` (PS-HRNet Eqs. (8)–(9));
* ``triplet`` — batch-hard triplet losses on the chosen sequences, summed (paper) or averaged (PS-HRNet Eq. (7));
* ``sr`` — ``‖G(x_l) − x_h‖₁`` between the SR output and the HR image (PS-HRNet Eq. (5));
* ``ps`` — the pseudo-siamese loss between teacher and student outputs over ``C`` (PS-HRNet Eq. (11)).

Each wraps the one implementation of its equation in :mod:`lib.losses` (``cross_entropy_label_smooth``,
``batch_hard_triplet_loss``, ``SRLoss``, ``PseudoSiameseLoss``) and adds what training needs around it: which
output it reads, the reduction over sequences, and the samples it applies to.

Hyper-parameters of the terms (margin, ε, C, reductions) are a :class:`PSHRNetLossConfig`; defaults are the
paper's: m = 0.1, ε = 0.1, ``C = {Seq1, Seq4, Seq5, ℓ_c}``, triplet summed over Seq1..Seq5. The authors'
code differs in ``margin = 0.3`` and ``triplet_reduction = 'mean'``.

Natively LR samples (no HR original) carry ``hr_mask = False``: identity terms use every sample, ``sr`` and
``ps`` only the samples with an HR image (``hr`` and ``teacher_out`` are then given for those only).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch

from ...losses import (DEFAULT_PS_COMPONENTS, LOSS_TERMS, SEQ_NAMES, LossInputs, LossTerm, PseudoSiameseLoss, SRLoss,
                       batch_hard_triplet_loss, cross_entropy_label_smooth, get_field, get_part)
from ...losses.pseudo_siamese import validate_components

__all__ = ["PSHRNET_TERMS", "PSHRNetLossConfig", "PSHRNetLossInputs", "CETerm", "TripletTerm", "SRTerm", "PSTerm"]

#: PS-HRNet's loss terms (PS-HRNet Eq. (12)); FTWA's (swa_cls, swa_tri, raft) read another network's outputs.
PSHRNET_TERMS = ("ce", "triplet", "sr", "ps")


@dataclass(frozen=True)
class PSHRNetLossConfig:
    """Hyper-parameters of PS-HRNet's loss terms (paper defaults; the weights are the stage's ``losses``).

    Attributes:
        margin: triplet margin m, PS-HRNet Eq. (7) (paper 0.1; authors' code 0.3).
        label_smooth: ε, PS-HRNet Eq. (9) (0.1).
        triplet_on: sequences the triplet loss uses (``seq1``..``seq5``, ``feat``) or ``('all',)``: every
            entry of the output's ``seq`` (single-embedding models).
        triplet_reduction: ``'sum'`` over them (paper) | ``'mean'`` (authors' code).
        triplet_normalize: L2-normalise features inside the triplet loss (``False``).
        triplet_no_positive: anchors without a positive: ``'skip'`` | ``'self'``.
        ps_components: ``C`` of PS-HRNet Eq. (11) (``('seq1', 'seq4', 'seq5', 'logits')``, Table VII's best).
        sr_reduction / ps_reduction: ``'mean'`` (default, ``nn.L1Loss`` as in the authors' code) | ``'sum'``.
    """

    margin: float = 0.1
    label_smooth: float = 0.1
    triplet_on: tuple[str, ...] = SEQ_NAMES
    triplet_reduction: Literal["sum", "mean"] = "sum"
    triplet_normalize: bool = False
    triplet_no_positive: Literal["skip", "self"] = "skip"
    ps_components: tuple[str, ...] = DEFAULT_PS_COMPONENTS
    sr_reduction: Literal["mean", "sum"] = "mean"
    ps_reduction: Literal["mean", "sum"] = "mean"

    def __post_init__(self) -> None:
        on = (self.triplet_on,) if isinstance(self.triplet_on, str) else tuple(self.triplet_on)
        bad = [n for n in on if n not in (*SEQ_NAMES, "feat", "all")]
        if bad or not on or ("all" in on and len(on) > 1):
            raise ValueError(f"triplet_on: expected names among {list(SEQ_NAMES) + ['feat']} or ['all'], found {list(on)}")
        object.__setattr__(self, "triplet_on", on)
        object.__setattr__(self, "ps_components", validate_components(self.ps_components))
        for k in ("triplet_reduction", "sr_reduction", "ps_reduction"):
            if getattr(self, k) not in ("sum", "mean"):
                raise ValueError(f"{k}: expected 'sum' or 'mean', found {getattr(self, k)!r}")


@dataclass
class PSHRNetLossInputs(LossInputs):
    """What PS-HRNet's steps hand the terms: the student's (or phase 1's) :class:`~lib.models.ReIDOutput` and the
    labels, plus, where the stage has them, G's restoration, the HR image and the frozen teacher's output on it
    (``None`` where the stage has no such thing)."""

    restored: torch.Tensor | None = None  # G(x_l)
    hr: torch.Tensor | None = None  # x_h (only the samples with an HR original when hr_mask is given)
    teacher_out: Any | None = None  # the frozen teacher's output on hr
    hr_mask: torch.Tensor | None = None  # the samples with an HR original: bool per sample, or their indices

    def with_hr(self) -> tuple[Any, torch.Tensor | None]:
        """``(out, restored)`` restricted to the samples with an HR original."""
        if self.hr_mask is None:
            return self.out, self.restored
        m = self.hr_mask
        out = type(self.out)(*[[t[m] for t in f] if isinstance(f, list) else f[m] for f in self.out])
        return out, None if self.restored is None else self.restored[m]


@LOSS_TERMS.register("ce")
class CETerm(LossTerm):
    """Label-smoothed cross entropy on ``ℓ_c`` (PS-HRNet Eqs. (8)–(9)), mean over the batch."""

    reads = ("label_smooth",)

    def forward(self, x: PSHRNetLossInputs):
        ce = cross_entropy_label_smooth(get_part(x.out, "logits"), x.targets, self.label_smooth, "mean")
        return ce, {"ce": ce.detach()}


@LOSS_TERMS.register("triplet")
class TripletTerm(LossTerm):
    """``L_BH``: batch-hard triplet losses on the chosen sequences, reduced by sum (PS-HRNet Eq. (7)) or mean."""

    reads = ("triplet_on", "triplet_reduction", "margin", "triplet_normalize", "triplet_no_positive")

    def forward(self, x: PSHRNetLossInputs):
        on = self.triplet_on
        names = [f"seq{i + 1}" for i in range(len(get_field(x.out, "seq")))] if on == ("all",) else on
        parts, tris = {}, []
        for name in names:
            t = batch_hard_triplet_loss(get_part(x.out, name), x.targets, margin=self.margin,
                                        normalize=self.triplet_normalize, no_positive=self.triplet_no_positive)
            parts[f"tri_{name}"] = t.detach()
            tris.append(t)
        bh = torch.stack(tris).sum() if self.triplet_reduction == "sum" else torch.stack(tris).mean()
        parts["bh"] = bh.detach()
        return bh, parts


@LOSS_TERMS.register("sr")
class SRTerm(LossTerm):
    """``L_SR`` (PS-HRNet Eq. (5)) on the samples with an HR original."""

    reads = ("sr_reduction",)

    def setup(self) -> None:
        self.loss = SRLoss(self.sr_reduction)

    def forward(self, x: PSHRNetLossInputs):
        x.need("sr", "restored", "hr")
        _, restored = x.with_hr()
        if restored.shape[0] == 0:
            return None, {}
        sr = self.loss(restored, x.hr)
        return sr, {"sr": sr.detach()}


@LOSS_TERMS.register("ps")
class PSTerm(LossTerm):
    """``L_PS`` (PS-HRNet Eq. (11)) between the teacher's and the student's outputs, on the samples with an HR
    original."""

    reads = ("ps_components", "ps_reduction")

    def setup(self) -> None:
        self.loss = PseudoSiameseLoss(self.ps_components, self.ps_reduction)

    def forward(self, x: PSHRNetLossInputs):
        if x.hr is not None and x.hr.shape[0] == 0:
            return None, {}
        x.need("ps", "teacher_out")
        out, _ = x.with_hr()
        ps, parts = self.loss(x.teacher_out, out)
        return ps, {**parts, "ps": ps.detach()}
