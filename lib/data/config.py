"""The ``data`` section every method's configuration shares: input size, the P × K batch, how pairs are formed,
augmentation (defaults: PS-HRNet's paper setting; a method's configuration may change them, FTWA's does).

* ``height`` × ``width`` (256 × 128), P = ``num_identities`` 4, K = ``num_instances`` 6;
* ``pair_mode`` (:data:`~lib.data.datasets.PAIR_MODES`): ``fresh`` (PS-HRNet's paper: every HR original down-sampled
  by a new r per sample) | ``mlr`` (PS-HRNet's authors' code: the stored MLR image) | ``stored`` (FTWA: LR images as
  stored, HR images down-sampled by a new r); ``rates`` (2, 3, 4);
* ``pad`` (10), ``random_erasing`` (0; BoT 0.5), ``native_lr`` (natively LR images such as CAVIAR camera 2 train too,
  with the terms that need no HR original; on);
* ``pipeline`` (:data:`~lib.data.tensor_pipeline.PIPELINES`): where a sample's pixels are made — ``pil`` (default: in
  the DataLoader workers, with PIL, as the authors' code) | ``tensor`` (workers gather uint8 images; down-sampling,
  resizing and augmentation run batched on the training device, :mod:`lib.data.tensor_pipeline`; the same random
  draws, pixels within a few 8-bit levels of PIL's). Training and evaluation both follow it. It enters a run's identity
  only when it is ``tensor`` (``pil`` runs made before it existed keep theirs).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..core.config import NEUTRAL_DEFAULT
from .datasets import PAIR_MODES
from .tensor_pipeline import PIPELINES

__all__ = ["DataConfig", "MIN_INPUT"]

#: Smallest network input side: every backbone's deepest map is 1/32 of the input.
MIN_INPUT = 32


@dataclass(frozen=True)
class DataConfig:
    height: int = 256
    width: int = 128
    num_identities: int = 4
    num_instances: int = 6
    pair_mode: str = "fresh"
    rates: tuple[int, ...] = (2, 3, 4)
    pad: int = 10
    random_erasing: float = 0.0
    native_lr: bool = True
    pipeline: str = field(default="pil", metadata=NEUTRAL_DEFAULT)

    def __post_init__(self) -> None:
        if min(self.height, self.width) < MIN_INPUT:
            raise ValueError(f"input {self.height}×{self.width} is too small: the backbones reduce the image 32-fold, "
                             f"so height and width must be ≥ {MIN_INPUT} pixels (paper 256×128)")
        if not self.rates or any(int(r) != r or r < 1 for r in self.rates):
            raise ValueError(f"rates: expected a non-empty list of integer down-sampling rates ≥ 1, found {list(self.rates)}")
        if self.pair_mode not in PAIR_MODES:
            raise ValueError(f"pair_mode: expected one of {PAIR_MODES}, found {self.pair_mode!r}")
        if self.pipeline not in PIPELINES:
            raise ValueError(f"pipeline: expected one of {PIPELINES}, found {self.pipeline!r}")

    @property
    def size(self) -> tuple[int, int]:
        return (self.height, self.width)
