"""FTWA's network (FTWA Sec. 2, Fig. 1): a two-stream backbone, RAFT and the self-weighted attention (SWA) heads.

* Backbone (Sec. 2.1, FTWA Eq. (1)): a registered backbone cut by its ``split()`` into a stem (ResNet-50: ``conv1`` +
  ``layer1``) and a body (``layer2..4``). E_H and E_L are two copies of the stem (same initial weights, trained
  separately; ``two_stream=False`` shares one, the Baseline of Table 2); E_ID is the shared body:
  ``F_HR = E_ID(E_H(I_HR))``, ``F'_LR = E_ID(E_L(I'_LR))``, ``F_LR = E_ID(E_L(I_LR))``.
* RAFT T (Sec. 2.2, :class:`~lib.models.raft.RAFT`): ``T(F'_LR)`` for L_RAFT (FTWA Eq. (2)) and ``F'_HR = T(F_LR)``
  (FTWA Eq. (3)); ``raft=None`` makes T the identity (FTWA_B, the Baseline).
* SWA (Sec. 2.3, FTWA Eq. (4)): global average pooling → ``v_HR, v'_HR, v_LR, v'_LR``; per stream a quality evaluator
  W (→ a weight in (0, 1), :class:`QualityEvaluator`) and an identity classifier C: ``w_HR = W_HR(v_HR)``,
  ``w'_HR = W_HR(v'_HR)``, ``w_LR = W_LR(v_LR)``, ``w'_LR = W_LR(v'_LR)``, ``f = C(v)`` alike. ``swa=False``: every
  weight is 1 (FTWA_B / FTWA_R: no SWA); ``shared_classifier=True``: C_HR = C_LR (the Baseline).

The four vectors are named ``hr`` (v_HR), ``hr_p`` (v'_HR = from an LR image through T), ``lr`` (v_LR) and
``lr_p`` (v'_LR = from the down-sampled HR image) in :class:`FTWAOutput`.
"""

from __future__ import annotations

import copy
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .backbones import BACKBONES, build_backbone
from .raft import RAFT

__all__ = ["FTWANet", "FTWAOutput", "QualityEvaluator", "VECTORS"]

#: The SWA vectors, FTWA Eq. (4): v_HR, v'_HR, v_LR, v'_LR.
VECTORS = ("hr", "hr_p", "lr", "lr_p")


class QualityEvaluator(nn.Module):
    """W: ``v -> w ∈ (0, 1)`` per sample — Linear → ReLU → Linear → sigmoid (the paper gives no structure)."""

    def __init__(self, channels: int, hidden: int = 128) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, 1))

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.body(v).squeeze(1))

    def log_weight(self, v: torch.Tensor) -> torch.Tensor:
        """``log w`` in float32 (``logsigmoid``): finite where ``w`` itself underflows to 0 (bf16 / fp32 sigmoid of a
        large negative score), so normalised weights (FTWA Eqs. (5), (7)) never become 0 / 0."""
        return F.logsigmoid(self.body(v).squeeze(1).float())


class FTWAOutput(NamedTuple):
    """Per group of inputs (HR images, their down-sampled versions, LR images), see the module docstring.

    Attributes:
        f_hr: F_HR maps of the HR images; t_lr_p: T(F'_LR) of their down-sampled versions (FTWA Eq. (2)'s pair).
        v, w, logits: ``{name: tensor}`` over :data:`VECTORS` — vectors ``(n, C)``, weights ``(n,)``, identity
            scores ``(n, num_classes)``; ``hr`` / ``lr_p`` have one row per HR image, ``lr`` / ``hr_p`` per LR image.
        log_w: the weights' logarithms (float32; what the losses use: stable where a weight underflows).
    """

    f_hr: torch.Tensor
    t_lr_p: torch.Tensor
    v: dict[str, torch.Tensor]
    w: dict[str, torch.Tensor]
    logits: dict[str, torch.Tensor]
    log_w: dict[str, torch.Tensor] | None = None


class FTWANet(nn.Module):
    """FTWA (see the module docstring).

    Args:
        num_classes: training identities.
        backbone, weights: a backbone with ``split()`` (ResNets, MobileNetV2) and its weight source.
        last_stride: 1 (FTWA Sec. 3.2: "modifying the last layer stride to be 1") or 2.
        two_stream: separate E_H / E_L (``True``) or one shared stem.
        raft: keyword arguments of :class:`~lib.models.raft.RAFT` (``width``, ``blocks``, ``steps``, ``attention``),
            or ``None`` (T = identity).
        swa: learn the quality evaluators (``False``: every weight 1).
        evaluator_hidden: hidden units of each quality evaluator.
        shared_classifier: one classifier for both streams.
    """

    def __init__(self, num_classes: int, backbone: str = "resnet50", weights: str = "none", last_stride: int = 1,
                 two_stream: bool = True, raft: dict | None = None, swa: bool = True, evaluator_hidden: int = 128,
                 shared_classifier: bool = False) -> None:
        super().__init__()
        if not hasattr(BACKBONES.get(backbone), "split"):
            raise ValueError(f"FTWA needs a backbone it can cut into a stem (E_L, E_H) and a body (E_ID); {backbone!r} "
                             "has no such cut (use a ResNet or mobilenet_v2)")
        net, channels = build_backbone(backbone, weights=weights, last_stride=last_stride)
        self.backbone_name, self.channels = backbone, channels[-1]
        stem, self.e_id = net.split()
        self.e_h = stem
        self.e_l = copy.deepcopy(stem) if two_stream else stem
        self.two_stream = two_stream
        self.raft = RAFT(self.channels, **raft) if raft is not None else None
        self.w_hr = QualityEvaluator(self.channels, evaluator_hidden) if swa else None
        self.w_lr = QualityEvaluator(self.channels, evaluator_hidden) if swa else None
        self.c_hr = nn.Linear(self.channels, num_classes)
        self.c_lr = self.c_hr if shared_classifier else nn.Linear(self.channels, num_classes)
        self.num_classes = num_classes

    # ------------------------------------------------------------------ pieces (also used at test time)
    def transform(self, f: torch.Tensor) -> torch.Tensor:
        """T (identity without RAFT)."""
        return f if self.raft is None else self.raft(f)

    def weight(self, stream: str, v: torch.Tensor) -> torch.Tensor:
        """``W_HR(v)`` / ``W_LR(v)``; ones without SWA."""
        w = self.w_hr if stream == "hr" else self.w_lr
        return torch.ones(v.shape[0], device=v.device, dtype=v.dtype) if w is None else w(v)

    def log_weight(self, stream: str, v: torch.Tensor) -> torch.Tensor:
        """``log W_HR(v)`` / ``log W_LR(v)`` in float32; zeros without SWA."""
        w = self.w_hr if stream == "hr" else self.w_lr
        return torch.zeros(v.shape[0], device=v.device) if w is None else w.log_weight(v)

    @staticmethod
    def pool(f: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(f, 1).flatten(1)

    def hr_stream(self, x: torch.Tensor) -> torch.Tensor:
        """``F_HR = E_ID(E_H(x))``."""
        return self.e_id(self.e_h(x))

    def lr_stream(self, x: torch.Tensor) -> torch.Tensor:
        """``E_ID(E_L(x))`` (F_LR or F'_LR)."""
        return self.e_id(self.e_l(x))

    # ------------------------------------------------------------------ training forward
    def forward(self, hr: torch.Tensor, lr_p: torch.Tensor, lr: torch.Tensor) -> FTWAOutput:
        """``hr``: HR images, ``lr_p``: their down-sampled versions (I'_LR), ``lr``: LR images (I_LR); any group may be
        empty (0 rows). E_ID runs once over the three groups."""
        n_h, n_l = hr.shape[0], lr.shape[0]
        stems = torch.cat([self.e_h(hr), self.e_l(torch.cat([lr_p, lr]))]) if self.two_stream else \
            self.e_h(torch.cat([hr, lr_p, lr]))
        maps = self.e_id(stems)
        f_hr, f_lr_p, f_lr = torch.split(maps, [n_h, n_h, n_l])
        t = self.transform(torch.cat([f_lr_p, f_lr]))
        t_lr_p, f_hr_p = torch.split(t, [n_h, n_l])
        v = {"hr": self.pool(f_hr), "hr_p": self.pool(f_hr_p), "lr": self.pool(f_lr), "lr_p": self.pool(f_lr_p)}
        log_w = {k: self.log_weight(k[:2], x) for k, x in v.items()}
        logits = {k: (self.c_hr if k.startswith("hr") else self.c_lr)(x) for k, x in v.items()}
        return FTWAOutput(f_hr, t_lr_p, v, {k: t.exp() for k, t in log_w.items()}, logits, log_w)
