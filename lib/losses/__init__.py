"""The losses of PS-HRNet (IEEE TIP) and FTWA (ICIP), one implementation of each equation, and the loss composer.

Building blocks (each citing its paper's equation):

* :mod:`~lib.losses.cross_entropy_label_smooth` — ``L_CE``, PS-HRNet Eqs. (8)-(9);
* :mod:`~lib.losses.triplet` — batch-hard triplet loss: PS-HRNet Eq. (7) per sequence, FTWA Eq. (6);
* :mod:`~lib.losses.sr_loss` — ``L_SR``, PS-HRNet Eq. (5);
* :mod:`~lib.losses.pseudo_siamese` — ``L_PS``, PS-HRNet Eq. (11);
* :mod:`~lib.losses.swa` — FTWA's ``L^Cls_SWA`` (FTWA Eq. (5)), ``L^Tri_SWA`` (FTWA Eqs. (6)–(7)), ``L_RAFT``
  (FTWA Eq. (2)).

The composer (:mod:`~lib.losses.compose`, generic): the term registry :data:`LOSS_TERMS`, the base
:class:`LossInputs`, :class:`LossComposer` (``Σ w · term``) and :func:`check_terms`. Each method registers its own
terms, with its inputs and its loss configuration, in its package: :mod:`lib.methods.pshrnet.losses` (``ce``,
``triplet``, ``sr``, ``ps``: PS-HRNet Eqs. (10) and (12)) and :mod:`lib.methods.ftwa.losses` (``swa_cls``,
``swa_tri``, ``raft``: FTWA Eq. (8)).

Every loss casts its inputs to float32, so it can follow a bf16/fp16 autocast forward pass.
"""

from ._outputs import SEQ_NAMES, get_field, get_part
from .compose import LOSS_TERMS, LossComposer, LossInputs, LossTerm, check_terms
from .cross_entropy_label_smooth import CrossEntropyLabelSmooth, cross_entropy_label_smooth
from .pseudo_siamese import DEFAULT_PS_COMPONENTS, PS_COMPONENTS, PseudoSiameseLoss
from .sr_loss import SRLoss, sr_loss
from .swa import raft_loss, swa_classification_loss, swa_triplet_loss
from .triplet import TripletLoss, batch_hard_triplet_loss, pairwise_euclidean

__all__ = [
    "SEQ_NAMES",
    "get_field",
    "get_part",
    "CrossEntropyLabelSmooth",
    "cross_entropy_label_smooth",
    "TripletLoss",
    "batch_hard_triplet_loss",
    "pairwise_euclidean",
    "SRLoss",
    "sr_loss",
    "PseudoSiameseLoss",
    "PS_COMPONENTS",
    "DEFAULT_PS_COMPONENTS",
    "LossInputs",
    "LossTerm",
    "LOSS_TERMS",
    "LossComposer",
    "check_terms",
    "swa_classification_loss",
    "swa_triplet_loss",
    "raft_loss",
]
