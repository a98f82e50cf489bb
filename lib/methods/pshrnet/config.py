"""PS-HRNet's typed configuration (defaults: the paper, PROTOCOL §2–§5).

Loaded from YAML (``configs/pshrnet/*.yaml``, with ``_base_`` inheritance) by :func:`lib.methods.load_config`;
a wrong type names the key, the expected type and the value found. Sections:

* ``model`` — the re-ID network: ``head`` (``hrnet_reid``), ``backbone`` (``hrnet_w32``), ``weights``
  (``none`` | ``hub`` | ``file:PATH`` | ``deep-sort-mobilenetv2``; the paper starts from ImageNet HRNet-W32-C),
  ``pooling`` (``avg+max``).
* ``sr`` — the SR module G (:data:`~lib.models.SR_MODULES`: ``vdsr_ca``, ``vdsr``, ``srcnn``, ``rcan``, ``bicubic``):
  ``name`` (``vdsr_ca``), ``depth`` 20, ``width`` 64, ``reduction`` 4, RCAN's ``groups`` × ``blocks`` (3 × 5, a
  reduced RCAN; the original is 10 × 20), and ``init`` of VDSR / VDSR-CA (``he``, the paper's; ``authors``: the
  release's normal(0, √(2/n)) on every conv, CA's 1×1 included; ``identity``: start as the identity map with
  VDSR-CA's gates open — an option), and ``interpolation`` (how the LR image is resized
  before G: ``auto`` = the module's own — bilinear for the learned ones, as the authors' code; ``bicubic`` as VDSR's
  paper). Each module reads only its own fields.
* ``data`` — input ``height`` × ``width`` (256 × 128), P = ``num_identities`` 4, K = ``num_instances`` 6,
  ``pair_mode`` (``fresh`` paper: a new r per sample | ``mlr`` authors' code: the stored MLR image), ``rates``
  (2, 3, 4), ``pad`` (10), ``random_erasing`` (0; BoT 0.5), ``native_lr`` (phase 2 and the baseline also train on
  natively LR images such as CAVIAR camera 2, with the identity terms only; on).
* ``loss`` — the loss terms' hyper-parameters (:class:`~lib.methods.pshrnet.losses.PSHRNetLossConfig`).
* ``phase1`` / ``phase2`` / ``baseline`` / ``solo_sr`` — :class:`StageConfig`: optimiser, schedule and loss weights
  per stage. ``solo_sr`` (Table III's "Solo SR") trains G alone with L_SR (PS-HRNet Eq. (5)); paper default: the
  paper's rate for G (8.5e-4, SGD); the classic VDSR recipe (``lr: 0.1`` with ``grad_clip``) and Adam are options.
* ``test`` — evaluation only (a change re-evaluates, never retrains): ``flip``, ``num_repeats``, ``feature``,
  ``batch_size``, ``restoration_space`` (PSNR/SSIM of restored queries on the ``y`` channel of YCbCr, the SR
  literature's convention, or on ``rgb``).
* ``runtime`` — execution (:class:`~lib.engine.runtime.RuntimeConfig`), never part of what a run computes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ...core.config import NEUTRAL_DEFAULT
from ...data.config import MIN_INPUT, DataConfig
from ...engine.optim import OptimConfig
from ..contract import MethodConfig, TestConfig as SharedTestConfig
from ...losses import check_terms
from ...models import BACKBONES, HEADS, SR_MODULES
from ...models.sr import INTERPOLATIONS as SR_INTERPOLATIONS
from ...models.sr.vdsr import INITS as SR_INITS
from ...models.embedder import TEST_FEATURES
from .losses import PSHRNET_TERMS, PSHRNetLossConfig

__all__ = ["ModelConfig", "SRConfig", "DataConfig", "StageConfig", "PSHRNetTestConfig", "TestConfig", "PSHRNetConfig", "MIN_INPUT"]

@dataclass(frozen=True)
class ModelConfig:
    head: str = "hrnet_reid"
    backbone: str = "hrnet_w32"
    weights: str = "none"
    pooling: str = "avg+max"

    def __post_init__(self) -> None:  # names are checked on load, not hours later when a stage is built
        HEADS.get(self.head)
        BACKBONES.get(self.backbone)


@dataclass(frozen=True)
class SRConfig:
    name: str = "vdsr_ca"
    depth: int = 20
    width: int = 64
    reduction: int = 4
    groups: int = 3
    blocks: int = 5
    init: str = field(default="he", metadata=NEUTRAL_DEFAULT)
    interpolation: str = field(default="auto", metadata=NEUTRAL_DEFAULT)

    def __post_init__(self) -> None:
        SR_MODULES.get(self.name)
        if self.init not in SR_INITS:
            raise ValueError(f"init: expected one of {SR_INITS}, found {self.init!r}")
        if self.interpolation not in SR_INTERPOLATIONS:
            raise ValueError(f"interpolation: expected one of {SR_INTERPOLATIONS}, found {self.interpolation!r}")


def _id_losses() -> dict[str, float]:
    return {"ce": 1.15, "triplet": 0.2}  # L_ID, PS-HRNet Eq. (10): λ_CE = 1.15, λ_BH = 0.2


@dataclass(frozen=True)
class StageConfig(OptimConfig):
    """A training stage: :class:`~lib.engine.OptimConfig` plus the weights of its loss terms (``losses``, by name:
    ``ce``, ``triplet``, ``sr``, ``ps``; weight 0 removes a term) and, for phase 2, ``init`` of the student
    (``weights``: like the teacher, from ``model.weights`` — the authors' code; ``teacher``: a copy of the phase-1
    model)."""

    losses: dict[str, float] = field(default_factory=_id_losses)
    init: str = "weights"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.init not in ("weights", "teacher"):
            raise ValueError(f"init: expected 'weights' or 'teacher', found {self.init!r}")
        check_terms(self.losses, PSHRNET_TERMS, "PS-HRNet", "Eq. (12)")


@dataclass(frozen=True)
class PSHRNetTestConfig(SharedTestConfig):
    """PS-HRNet's evaluation settings: the shared ones (``flip``, ``num_repeats``, ``batch_size``) plus ``feature``
    (the test feature of the HRNet-ReID head, :data:`~lib.models.embedder.TEST_FEATURES`) and ``restoration_space``
    (where G's PSNR / SSIM are measured: ``y`` or ``rgb``)."""

    feature: str = "concat"
    restoration_space: str = "y"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.feature not in TEST_FEATURES:
            raise ValueError(f"feature: expected one of {TEST_FEATURES}, found {self.feature!r}")
        if self.restoration_space not in ("y", "rgb"):
            raise ValueError(f"restoration_space: expected 'y' or 'rgb', found {self.restoration_space!r}")


#: The name this section had before the shared :class:`~lib.methods.TestConfig` (kept for code that imports it).
TestConfig = PSHRNetTestConfig


@dataclass(frozen=True)
class PSHRNetConfig(MethodConfig):
    """Everything that defines a PS-HRNet experiment; see the module docstring for the sections (``seed``,
    ``data``, ``runtime`` and the shared part of ``test``: :class:`~lib.methods.MethodConfig`)."""

    model: ModelConfig = field(default_factory=ModelConfig)
    sr: SRConfig = field(default_factory=SRConfig)
    loss: PSHRNetLossConfig = field(default_factory=PSHRNetLossConfig)
    phase1: StageConfig = field(default_factory=StageConfig)
    phase2: StageConfig = field(default_factory=lambda: StageConfig(
        module_lr={"sr": 8.5e-4}, losses={**_id_losses(), "sr": 0.5, "ps": 0.5}))
    baseline: StageConfig = field(default_factory=lambda: StageConfig(epochs=140))
    solo_sr: StageConfig = field(default_factory=lambda: StageConfig(lr=8.5e-4, losses={"sr": 1.0}))
    test: PSHRNetTestConfig = field(default_factory=PSHRNetTestConfig)
