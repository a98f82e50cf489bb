"""FTWA's typed configuration (defaults: the paper, FTWA Sec. 3.2 and PROTOCOL §7).

Loaded from YAML (``configs/ftwa/*.yaml``, ``_base_`` inheritance) by :func:`lib.methods.load_config`. Sections:

* ``model`` — ``backbone`` (``resnet50``; any backbone with a ``split()``: ResNets, ``mobilenet_v2``), ``weights``
  (``hub``: ImageNet, the paper's), ``last_stride`` (1, the paper's), ``two_stream`` (separate E_H / E_L; ``false``
  shares one stem — Table 2's Baseline), ``shared_classifier`` (one classifier for both streams; the Baseline).
* ``raft`` — T (Sec. 2.2): ``enabled``, ``width`` 256, ``blocks`` 2, ``steps`` 3 (distillation steps per block),
  ``attention`` (``contrast``: IMDN's contrast-aware channel attention | ``avg``: Fig. 2's GAP). The paper gives no
  sizes; these are ours (lightweight, as the paper requires).
* ``swa`` — the quality evaluators (Sec. 2.3): ``enabled`` (``false``: every weight is 1 — FTWA_B, FTWA_R),
  ``hidden`` units (128).
* ``data`` — shared :class:`~lib.data.config.DataConfig`; FTWA's default ``pair_mode: stored`` (HR images get a
  fresh I'_LR, LR images enter the LR stream as stored: the paper's Sec. 2.1) and P × K = 16 × 4 (batch 64).
* ``loss`` — :class:`~lib.methods.ftwa.losses.SWALossConfig`: margin 0.3, plain cross entropy, ``weight_grad``,
  ``raft_detach_target``, ``weight_floor`` (0: FTWA Eqs. (5) and (7) as written).
* ``train`` — :class:`TrainConfig`: Adam, lr 7e-4, weight decay 5e-4 (biases too), 120 epochs, × 0.2 at epochs 40
  and 70, and the loss weights of FTWA Eq. (8) (``swa_cls`` 3, ``swa_tri`` 1, ``raft`` 0.1).
* ``test`` — evaluation only: ``match`` (how an LR query is compared with an HR gallery image,
  :data:`~lib.methods.ftwa.matching.MATCHES`), ``weight_floor`` (a floor on ``swa``'s normalised weight, as
  ``loss.weight_floor`` in training; 0: the weights as the evaluators give them), ``flip``, ``num_repeats``, ``batch_size``.
* ``runtime`` — execution (:class:`~lib.engine.runtime.RuntimeConfig`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ...data.config import DataConfig
from ...engine.optim import OptimConfig
from ..contract import MethodConfig, TestConfig
from ...losses import check_terms
from ...models import BACKBONES
from ...models.raft import ATTENTIONS
from .losses import FTWA_TERMS, SWALossConfig
from .matching import MATCHES

__all__ = ["FTWAModelConfig", "RAFTConfig", "SWAConfig", "TrainConfig", "FTWATestConfig", "FTWAConfig"]


@dataclass(frozen=True)
class FTWAModelConfig:
    backbone: str = "resnet50"
    weights: str = "hub"
    last_stride: int = 1
    two_stream: bool = True
    shared_classifier: bool = False

    def __post_init__(self) -> None:
        if not hasattr(BACKBONES.get(self.backbone), "split"):
            raise ValueError(f"backbone: FTWA cuts the backbone into a stem and a body; {self.backbone!r} cannot be "
                             "cut (use a ResNet or mobilenet_v2)")
        if self.last_stride not in (1, 2):
            raise ValueError(f"last_stride: expected 1 or 2, found {self.last_stride}")


@dataclass(frozen=True)
class RAFTConfig:
    enabled: bool = True
    width: int = 256
    blocks: int = 2
    steps: int = 3
    attention: str = "contrast"

    def __post_init__(self) -> None:
        if self.attention not in ATTENTIONS:
            raise ValueError(f"attention: expected one of {ATTENTIONS}, found {self.attention!r}")
        if self.width < 2 or self.width % 2:
            raise ValueError(f"width: expected an even number ≥ 2 (each distillation step halves it), found {self.width}")


@dataclass(frozen=True)
class SWAConfig:
    enabled: bool = True
    hidden: int = 128


def _eq8() -> dict[str, float]:
    return {"swa_cls": 3.0, "swa_tri": 1.0, "raft": 0.1}  # λ1, λ2, λ3 of FTWA Eq. (8)


@dataclass(frozen=True)
class TrainConfig(OptimConfig):
    """:class:`~lib.engine.OptimConfig` with FTWA's defaults plus the loss weights of FTWA Eq. (8) (``losses``; weight 0
    removes a term)."""

    optimizer: str = "adam"
    epochs: int = 120
    lr: float = 7e-4
    weight_decay: float = 5e-4
    schedule: str = "multistep"
    milestones: tuple[int, ...] = (40, 70)
    gamma: float = 0.2
    losses: dict[str, float] = field(default_factory=_eq8)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_terms(self.losses, FTWA_TERMS, "FTWA", "Eq. (8)")


@dataclass(frozen=True)
class FTWATestConfig(TestConfig):
    """FTWA's evaluation settings: the shared ones (``flip``, ``num_repeats``, ``batch_size``) plus ``match`` and
    ``weight_floor``."""

    match: str = "swa"
    weight_floor: float = 0.0  # chosen on validation for the floor variant: 0 gave 56.7, 0.1 gave 55.0 (README)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.match not in MATCHES:
            raise ValueError(f"match: expected one of {MATCHES}, found {self.match!r}")
        if not 0.0 <= self.weight_floor < 0.5:
            raise ValueError(f"weight_floor: expected a number in [0, 0.5), found {self.weight_floor!r}")


def _data() -> DataConfig:
    return DataConfig(num_identities=16, num_instances=4, pair_mode="stored")


@dataclass(frozen=True)
class FTWAConfig(MethodConfig):
    """Everything that defines an FTWA experiment; see the module docstring for the sections (``seed``, ``data``,
    ``runtime`` and the shared part of ``test``: :class:`~lib.methods.MethodConfig`)."""

    data: DataConfig = field(default_factory=_data)
    model: FTWAModelConfig = field(default_factory=FTWAModelConfig)
    raft: RAFTConfig = field(default_factory=RAFTConfig)
    swa: SWAConfig = field(default_factory=SWAConfig)
    loss: SWALossConfig = field(default_factory=SWALossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    test: FTWATestConfig = field(default_factory=FTWATestConfig)

    def __post_init__(self) -> None:
        if self.data.pair_mode not in ("stored", "fresh"):
            raise ValueError(f"data.pair_mode: FTWA needs an LR version of every HR image ('stored': LR images as "
                             f"stored, HR images down-sampled; 'fresh': every image down-sampled), found "
                             f"{self.data.pair_mode!r} (in 'mlr' mode an HR image's LR side is the HR image itself)")
