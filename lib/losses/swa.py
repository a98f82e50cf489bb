"""FTWA's losses: the SWA classification loss (FTWA Eq. (5)), the SWA triplet loss (FTWA Eqs. (6)–(7)) and L_RAFT
(FTWA Eq. (2)) — the one implementation of each. FTWA's terms ``swa_cls``, ``swa_tri`` and ``raft``
(:mod:`lib.methods.ftwa.losses`) call them and are composed as ``L = λ₁ L_Cls + λ₂ L_Tri + λ₃ L_RAFT``
(FTWA Eq. (8): 3, 1, 0.1) by the shared :class:`~lib.losses.LossComposer`.

The vectors and weights are keyed by image group: ``hr`` (the HR images), ``lr_p`` (their down-sampled versions),
``lr`` (the LR images), ``hr_p`` (the LR images through T).

Readings of what the paper leaves open (options of :class:`lib.methods.ftwa.losses.SWALossConfig`, README deviations
table):

* FTWA Eq. (5) is per pair: for an HR image ``(w_HR·CE(f_HR) + w'_LR·CE(f'_LR)) / (w_HR + w'_LR)``, for an LR image
  ``(w_LR·CE(f_LR) + w'_HR·CE(f'_HR)) / (w_LR + w'_HR)``; each averaged over its images, the two summed. With
  equal weights it is the mean of each CE pair. A batch without LR (or HR) images has only the other part.
* FTWA Eq. (7)'s weights multiply batch-level triplet losses, so they are batch means: ``w_HR·w'_HR`` = mean of W_HR
  over the HR images × mean of W_HR over the LR images' transformed vectors, etc.; L^Tri (FTWA Eq. (6)) is the
  batch-hard triplet loss (Hermans et al. 2017) over the union of the two vector sets, mean over anchors, margin 0.3,
  as in the re-ID code bases the paper's settings (weight-decay bias factor, linear warm-up scheduler) come from.
* ``weight_grad``: ``'full'`` (the equations as written: the gradient reaches the evaluators through numerators and
  denominators, so a weight grows where its loss is the smaller of its pair — the only reading in which the
  evaluators learn a *relative* quality) or ``'detach_denominator'`` (the normalising sums are constants: each weight's
  gradient is its loss over the sum, always positive, so every weight only shrinks — kept to show that, not advised).
* ``raft_detach_target``: L_RAFT's target F_HR is a constant (``True``) or also trained (``False``, as written).
* ``weight_floor`` (0, as written): each normalised weight of FTWA Eqs. (5) and (7) is at least this
  (``floor + (1 − 2·floor) · w_a / (w_a + w_b)``). As written, the evaluators can drive one stream's weights to ~0
  within two epochs, after which that stream gets no identity gradient (README, FTWA); a floor keeps both streams
  learning — an option, our addition, to be chosen on validation identities.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .triplet import batch_hard_triplet_loss

__all__ = ["swa_classification_loss", "swa_triplet_loss", "raft_loss", "WEIGHT_GRADS", "floored"]

#: How the gradient reaches the quality weights (``weight_grad`` of the functions below; see the module docstring).
WEIGHT_GRADS = ("full", "detach_denominator")


def floored(p, floor: float):
    """A normalised weight ``p`` raised to at least ``floor`` (``floor + (1 − 2·floor)·p``; the pair's two weights
    still sum to 1) — ``loss.weight_floor`` in training, ``test.weight_floor`` in FTWA's ``swa`` matching."""
    return floor + (1 - 2 * floor) * p if floor else p


def _normalised(la: torch.Tensor, lb: torch.Tensor, detach: bool,
                floor: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """``(w_a, w_b) / (w_a + w_b)`` from log-weights, in log space (never 0 / 0; ``detach``: the sum is a constant),
    each raised to at least ``floor`` (``floor + (1 − 2·floor)·p``)."""
    den = torch.logaddexp(la, lb)
    den = den.detach() if detach else den
    pa, pb = torch.exp(la - den), torch.exp(lb - den)
    return floored(pa, floor), floored(pb, floor)


def _pair(loss_a: torch.Tensor, la: torch.Tensor, loss_b: torch.Tensor, lb: torch.Tensor, detach: bool,
          floor: float = 0.0) -> torch.Tensor:
    pa, pb = _normalised(la, lb, detach, floor)
    return (pa * loss_a + pb * loss_b).mean()


def _logs(w: dict[str, torch.Tensor], log_w: bool) -> dict[str, torch.Tensor]:
    return w if log_w else {k: torch.log(t) for k, t in w.items()}


def swa_classification_loss(ce: dict[str, torch.Tensor], w: dict[str, torch.Tensor],
                            weight_grad: str = "full", log_w: bool = False, floor: float = 0.0) -> torch.Tensor:
    """FTWA Eq. (5) from per-sample cross entropies ``ce`` and weights ``w`` (keys ``hr``, ``lr_p``: one entry per HR
    image; ``lr``, ``hr_p``: per LR image; ``log_w``: ``w`` holds log-weights). A group without images contributes
    nothing. The normalised weights are computed in log space — the same value as FTWA Eq. (5), finite also where the
    weights underflow (a quality evaluator driven to saturation)."""
    detach = weight_grad == "detach_denominator"
    w = _logs(w, log_w)
    parts = []
    if ce["hr"].numel():
        parts.append(_pair(ce["hr"], w["hr"], ce["lr_p"], w["lr_p"], detach, floor))
    if ce["lr"].numel():
        parts.append(_pair(ce["lr"], w["lr"], ce["hr_p"], w["hr_p"], detach, floor))
    if not parts:
        raise ValueError("swa_classification_loss: the batch has neither HR nor LR images")
    return torch.stack(parts).sum()


def swa_triplet_loss(v: dict[str, torch.Tensor], w: dict[str, torch.Tensor], y_hr: torch.Tensor, y_lr: torch.Tensor,
                     margin: float = 0.3, weight_grad: str = "full", normalize: bool = False,
                     no_positive: str = "skip", log_w: bool = False, floor: float = 0.0) -> torch.Tensor:
    """FTWA Eq. (7): ``(a·L^Tri(v_HR ∪ v'_HR) + b·L^Tri(v_LR ∪ v'_LR)) / (a + b)`` with ``a = w̄_HR·w̄'_HR``,
    ``b = w̄_LR·w̄'_LR`` (batch means; a missing group's mean counts as 1), normalised in log space."""
    w = _logs(w, log_w)

    def mean(x: torch.Tensor) -> torch.Tensor:  # log of the batch mean of the weights
        return torch.logsumexp(x, 0) - math.log(x.numel()) if x.numel() else x.new_zeros(())

    def tri(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return batch_hard_triplet_loss(torch.cat([a, b]), torch.cat([y_hr, y_lr]), margin=margin, normalize=normalize,
                                       no_positive=no_positive)
    pa, pb = _normalised(mean(w["hr"]) + mean(w["hr_p"]), mean(w["lr"]) + mean(w["lr_p"]),
                         weight_grad == "detach_denominator", floor)
    return pa * tri(v["hr"], v["hr_p"]) + pb * tri(v["lr_p"], v["lr"])


def raft_loss(f_hr: torch.Tensor, t_lr_p: torch.Tensor, detach_target: bool = False) -> torch.Tensor:
    """FTWA Eq. (2): ``‖F_HR − T(F'_LR)‖₁``, the mean absolute difference (``nn.L1Loss``)."""
    return F.l1_loss(t_lr_p.float(), (f_hr.detach() if detach_target else f_hr).float())
