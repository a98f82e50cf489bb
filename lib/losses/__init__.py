"""Losses of PS-HRNet (IEEE TIP) and FTWA (ICIP), each citing its paper's equation.

* :mod:`~lib.losses.cross_entropy_label_smooth` — ``L_CE``, PS-HRNet Eqs. (8)-(9);
* :mod:`~lib.losses.triplet` — batch-hard triplet ``L_BH``, PS-HRNet Eq. (7);
* :mod:`~lib.losses.id_loss` — ``L_ID``, PS-HRNet Eq. (10);
* :mod:`~lib.losses.sr_loss` — ``L_SR``, PS-HRNet Eq. (5);
* :mod:`~lib.losses.pseudo_siamese` — ``L_PS``, PS-HRNet Eq. (11);
* :mod:`~lib.losses.compose` — ``L_TOTAL``, PS-HRNet Eq. (12): the terms by name (:data:`LOSS_TERMS`) composed with
  weights, and :class:`LossConfig`;
* :mod:`~lib.losses.swa` — FTWA's terms: ``swa_cls`` (FTWA Eq. (5)), ``swa_tri`` (FTWA Eqs. (6)–(7)), ``raft``
  (FTWA Eq. (2)), composed as FTWA Eq. (8), and :class:`SWALossConfig`.

Every loss casts its inputs to float32, so it can follow a bf16/fp16 autocast forward pass.
"""

from .cross_entropy_label_smooth import CrossEntropyLabelSmooth, cross_entropy_label_smooth
from .id_loss import IDLoss, parts_to_floats
from .pseudo_siamese import DEFAULT_PS_COMPONENTS, PS_COMPONENTS, PseudoSiameseLoss
from .sr_loss import SRLoss, sr_loss
from .compose import LOSS_TERMS, LossComposer, LossConfig, LossInputs
from .triplet import TripletLoss, batch_hard_triplet_loss, pairwise_euclidean
from .swa import SWALossConfig, raft_loss, swa_classification_loss, swa_triplet_loss

__all__ = [
    "CrossEntropyLabelSmooth",
    "cross_entropy_label_smooth",
    "TripletLoss",
    "batch_hard_triplet_loss",
    "pairwise_euclidean",
    "IDLoss",
    "parts_to_floats",
    "SRLoss",
    "sr_loss",
    "PseudoSiameseLoss",
    "PS_COMPONENTS",
    "DEFAULT_PS_COMPONENTS",
    "LossConfig",
    "LossInputs",
    "LOSS_TERMS",
    "LossComposer",
    "SWALossConfig",
    "swa_classification_loss",
    "swa_triplet_loss",
    "raft_loss",
]
