"""Loss terms by name, composed with weights: ``L = Σ_name w_name · term_name`` (PS-HRNet Eq. (12)).

    L_TOTAL = λ_CE · L_CE + λ_BH · L_BH  (= L_ID, PS-HRNet Eq. (10))
              + λ_SR · L_SR (PS-HRNet Eq. (5)) + λ_PS · L_PS (PS-HRNet Eq. (11))

A stage names its terms and weights, e.g. ``{'ce': 1.15, 'triplet': 0.2, 'sr': 0.5, 'ps': 0.5}`` (paper
phase 2); a term with weight 0 is not computed, so any term can be removed (Table II's ID and SR+ID rows).
Registered terms (:data:`LOSS_TERMS`; a new method registers its own):

* ``ce`` — label-smoothed cross entropy on ``ℓ_c`` (PS-HRNet Eqs. (8)–(9));
* ``triplet`` — batch-hard triplet losses on the chosen sequences, summed (paper) or averaged (PS-HRNet Eq. (7));
* ``sr`` — ``‖G(x_l) − x_h‖₁`` between the SR output and the HR image (PS-HRNet Eq. (5));
* ``ps`` — the pseudo-siamese loss between teacher and student outputs over ``C`` (PS-HRNet Eq. (11)).

Hyper-parameters of the terms (margin, ε, C, reductions) are a :class:`LossConfig`; defaults are the
paper's: m = 0.1, ε = 0.1, ``C = {Seq1, Seq4, Seq5, ℓ_c}``, triplet summed over Seq1..Seq5. The authors'
code differs in ``margin = 0.3`` and ``triplet_reduction = 'mean'``.

Natively LR samples (no HR original) carry ``hr_mask = False``: identity terms use every sample, ``sr`` and
``ps`` only the samples with an HR image (``hr`` and ``teacher_out`` are then given for those only).
Every term is computed in float32 and returns detached tensor parts (no host synchronisation).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from ..core.registry import Registry
from ._outputs import SEQ_NAMES, _field, get_part
from .cross_entropy_label_smooth import cross_entropy_label_smooth
from .pseudo_siamese import DEFAULT_PS_COMPONENTS, PseudoSiameseLoss, validate_components
from .sr_loss import SRLoss
from .triplet import batch_hard_triplet_loss

__all__ = ["LossConfig", "LossInputs", "LOSS_TERMS", "LossComposer"]

#: ``name -> (LossConfig) -> term``; a term is ``(LossInputs) -> (loss, parts)``.
LOSS_TERMS = Registry("loss term")


@dataclass(frozen=True)
class LossConfig:
    """Hyper-parameters of the loss terms (paper defaults; the weights are the stage's ``losses``).

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

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


@dataclass
class LossInputs:
    """What a step hands the loss terms (``None`` where the stage has no such thing)."""

    out: Any  # the trained model's output (ReIDOutput)
    targets: torch.Tensor
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


def _need(x: LossInputs, name: str, *fields: str) -> None:
    missing = [f for f in fields if getattr(x, f) is None]
    if missing:
        raise ValueError(f"loss term {name!r} needs {', '.join(missing)}, which this stage does not provide "
                         f"(set its weight to 0 or remove it from the stage's losses)")


@LOSS_TERMS.register("ce")
class CETerm(nn.Module):
    """Label-smoothed cross entropy on ``ℓ_c`` (PS-HRNet Eqs. (8)–(9)), mean over the batch."""

    def __init__(self, cfg: LossConfig) -> None:
        super().__init__()
        self.epsilon = cfg.label_smooth

    def forward(self, x: LossInputs):
        ce = cross_entropy_label_smooth(get_part(x.out, "logits"), x.targets, self.epsilon, "mean")
        return ce, {"ce": ce.detach()}


@LOSS_TERMS.register("triplet")
class TripletTerm(nn.Module):
    """Batch-hard triplet losses on the chosen sequences, reduced by sum (PS-HRNet Eq. (7)) or mean."""

    def __init__(self, cfg: LossConfig) -> None:
        super().__init__()
        self.on, self.reduction = cfg.triplet_on, cfg.triplet_reduction
        self.margin, self.normalize, self.no_positive = cfg.margin, cfg.triplet_normalize, cfg.triplet_no_positive

    def forward(self, x: LossInputs):
        names = [f"seq{i + 1}" for i in range(len(_field(x.out, "seq")))] if self.on == ("all",) else self.on
        parts, tris = {}, []
        for name in names:
            t = batch_hard_triplet_loss(get_part(x.out, name), x.targets, margin=self.margin, normalize=self.normalize,
                                        no_positive=self.no_positive)
            parts[f"tri_{name}"] = t.detach()
            tris.append(t)
        bh = torch.stack(tris).sum() if self.reduction == "sum" else torch.stack(tris).mean()
        parts["bh"] = bh.detach()
        return bh, parts


@LOSS_TERMS.register("sr")
class SRTerm(nn.Module):
    """``L_SR`` (PS-HRNet Eq. (5)) on the samples with an HR original."""

    def __init__(self, cfg: LossConfig) -> None:
        super().__init__()
        self.loss = SRLoss(cfg.sr_reduction)

    def forward(self, x: LossInputs):
        _need(x, "sr", "restored", "hr")
        _, restored = x.with_hr()
        if restored.shape[0] == 0:
            return None, {}
        sr = self.loss(restored, x.hr)
        return sr, {"sr": sr.detach()}


@LOSS_TERMS.register("ps")
class PSTerm(nn.Module):
    """``L_PS`` (PS-HRNet Eq. (11)) between the teacher's and the student's outputs, on the samples with an HR
    original."""

    def __init__(self, cfg: LossConfig) -> None:
        super().__init__()
        self.loss = PseudoSiameseLoss(cfg.ps_components, cfg.ps_reduction)

    def forward(self, x: LossInputs):
        if x.hr is not None and x.hr.shape[0] == 0:
            return None, {}
        _need(x, "ps", "teacher_out")
        out, _ = x.with_hr()
        ps, parts = self.loss(x.teacher_out, out)
        return ps, {**parts, "ps": ps.detach()}


class LossComposer(nn.Module):
    """``Σ w · term`` over the named terms with a non-zero weight.

    ``forward(LossInputs) -> (total, parts)``: ``total`` a float32 scalar with a graph, ``parts`` detached
    float32 tensors (each term's own parts, ``total``). Unknown names list the registered terms.
    """

    def __init__(self, weights: Mapping[str, float], cfg: LossConfig | None = None) -> None:
        super().__init__()
        cfg = LossConfig() if cfg is None else cfg  # a LossConfig or a tracked reader of one
        self.weights = {n: float(w) for n, w in weights.items() if float(w) != 0.0}
        if not self.weights:
            raise ValueError(f"losses: every weight is 0 in {dict(weights)}; a stage needs at least one loss term")
        self.terms = nn.ModuleDict({n: LOSS_TERMS.build(n, cfg) for n in self.weights})

    def forward(self, x: LossInputs) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        total, parts = None, {}
        for name, term in self.terms.items():
            value, p = term(x)
            if value is None:  # e.g. no sample with an HR original in this batch
                continue
            parts.update(p)
            weighted = self.weights[name] * value
            total = weighted if total is None else total + weighted
        if total is None:  # no term applies to this batch (e.g. only L_SR/L_PS and no sample with an HR original)
            total = torch.zeros((), device=x.targets.device, requires_grad=True)
        parts["total"] = total.detach()
        return total, parts

    def extra_repr(self) -> str:
        return ", ".join(f"{n}={w:g}" for n, w in self.weights.items())
