"""Joint multi-task loss ``L_TOTAL`` (PS-HRNet paper Eq. (12)) and its configuration.

    L_TOTAL = L_ID + λ_SR · L_SR + λ_PS · L_PS

* ``L_ID`` (Eq. (10)) on the student's outputs — :class:`lib.losses.IDLoss`;
* ``L_SR`` (Eq. (5)) between VDSR-CA's output and the HR image — :class:`lib.losses.SRLoss`;
* ``L_PS`` (Eq. (11)) between the frozen teacher's and the student's outputs —
  :class:`lib.losses.PseudoSiameseLoss`.

Phase 1 (HR teacher) uses ``L_ID`` only: call :class:`TotalLoss` without ``restored``/``hr``/
``teacher_out`` (or set ``lambda_sr = lambda_ps = 0``), the missing terms are left out.

Defaults are the paper's (Implementation details): λ_CE = 1.15, λ_BH = 0.2, m = 0.1, ε = 0.1,
λ_SR = λ_PS = 0.5, ``C = {Seq1, Seq4, Seq5, ℓ_c}``, triplet summed over Seq1..Seq5.
The authors' code differs in ``margin = 0.3`` and ``triplet_reduction = 'mean'``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from ._outputs import SEQ_NAMES
from .id_loss import IDLoss, parts_to_floats
from .pseudo_siamese import DEFAULT_PS_COMPONENTS, PseudoSiameseLoss, validate_components
from .sr_loss import SRLoss

__all__ = ["LossConfig", "TotalLoss"]


@dataclass(frozen=True)
class LossConfig:
    """Every loss hyper-parameter of PS-HRNet, paper defaults.

    Attributes:
        lambda_ce: λ_CE, Eq. (10) (1.15).
        lambda_bh: λ_BH, Eq. (10) (0.2).
        margin: triplet margin m, Eq. (7) (paper 0.1; authors' code 0.3).
        label_smooth: ε, Eq. (9) (0.1).
        triplet_on: sequences the triplet loss uses (Seq1..Seq5) or ``'all'``.
        triplet_reduction: ``'sum'`` over them (paper) | ``'mean'`` (authors' code).
        triplet_normalize: L2-normalise features inside the triplet loss (``False``).
        triplet_no_positive: anchors without a positive: ``'skip'`` | ``'self'``.
        lambda_sr: λ_SR, Eq. (12) (0.5).
        lambda_ps: λ_PS, Eq. (12) (0.5).
        ps_components: ``C`` of Eq. (11) (``('seq1', 'seq4', 'seq5', 'logits')``).
        sr_reduction / ps_reduction: ``'mean'`` (default, ``nn.L1Loss``) | ``'sum'``.
    """

    lambda_ce: float = 1.15
    lambda_bh: float = 0.2
    margin: float = 0.1
    label_smooth: float = 0.1
    triplet_on: tuple[str, ...] | str = SEQ_NAMES
    triplet_reduction: Literal["sum", "mean"] = "sum"
    triplet_normalize: bool = False
    triplet_no_positive: Literal["skip", "self"] = "skip"
    lambda_sr: float = 0.5
    lambda_ps: float = 0.5
    ps_components: tuple[str, ...] = DEFAULT_PS_COMPONENTS
    sr_reduction: Literal["mean", "sum"] = "mean"
    ps_reduction: Literal["mean", "sum"] = "mean"

    def __post_init__(self) -> None:
        # Lists (e.g. from YAML) become tuples so the config stays hashable and comparable.
        if not isinstance(self.triplet_on, str):
            object.__setattr__(self, "triplet_on", tuple(self.triplet_on))
        object.__setattr__(self, "ps_components", validate_components(self.ps_components))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LossConfig:
        """Build from a mapping (e.g. a params YAML section); unknown keys raise ``ValueError``."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"LossConfig: unknown key(s) {unknown}; valid: {sorted(names)}")
        return cls(**dict(d))

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python dict (tuples as lists), for logging and manifests."""
        return {
            k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()
        }


class TotalLoss(nn.Module):
    """``L_TOTAL`` of Eq. (12).

    ``forward(student_out, targets, restored=None, hr=None, teacher_out=None, hr_mask=None)`` returns
    ``(total, parts)``: ``total`` a float32 scalar tensor with a graph, ``parts`` a dict of Python
    floats: ``ce``, ``tri_seqN``, ``bh``, ``id`` (L_ID), ``sr`` (L_SR), ``ps_<c>``, ``ps`` (L_PS)
    and ``total``. A term whose inputs are missing or whose λ is 0 is not computed. ``hr_mask`` (bool, one
    per sample) marks the samples that have an HR original: L_ID uses every sample, L_SR and L_PS only those
    (``hr`` and ``teacher_out`` are then given for the masked samples only).
    """

    def __init__(self, config: LossConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or LossConfig()
        self.id_loss = IDLoss(
            lambda_ce=cfg.lambda_ce,
            lambda_bh=cfg.lambda_bh,
            margin=cfg.margin,
            epsilon=cfg.label_smooth,
            triplet_on=cfg.triplet_on,  # type: ignore[arg-type]
            triplet_reduction=cfg.triplet_reduction,
            normalize=cfg.triplet_normalize,
            no_positive=cfg.triplet_no_positive,
        )
        self.sr_loss = SRLoss(cfg.sr_reduction)
        self.ps_loss = PseudoSiameseLoss(cfg.ps_components, cfg.ps_reduction)

    def forward(
        self,
        student_out: Any,
        targets: torch.Tensor,
        restored: torch.Tensor | None = None,
        hr: torch.Tensor | None = None,
        teacher_out: Any | None = None,
        hr_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        cfg = self.config
        total, parts = self.id_loss(student_out, targets)
        if hr_mask is not None:  # natively LR samples: L_ID only; L_SR and L_PS on the samples with an HR image
            if restored is not None:
                restored = restored[hr_mask]
            student_out = type(student_out)(*[[t[hr_mask] for t in f] if isinstance(f, list) else f[hr_mask]
                                             for f in student_out])
            if restored is not None and restored.shape[0] == 0:
                restored = hr = teacher_out = None
        if (restored is None) != (hr is None):
            raise ValueError("L_SR needs both `restored` (G(x_l)) and `hr` (x_h)")
        if restored is not None and cfg.lambda_sr != 0.0:
            sr = self.sr_loss(restored, hr)
            parts["sr"] = sr.detach()
            total = total + cfg.lambda_sr * sr
        if teacher_out is not None and cfg.lambda_ps != 0.0:
            ps, ps_parts = self.ps_loss(teacher_out, student_out)
            parts.update(ps_parts)
            parts["ps"] = ps.detach()
            total = total + cfg.lambda_ps * ps
        parts["total"] = total.detach()
        return total, parts_to_floats(parts)
