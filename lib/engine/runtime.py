"""How a run executes (never part of what it computes, so never part of a run's identity)."""

from __future__ import annotations

from dataclasses import dataclass

from .precision import Precision, resolve_device, resolve_precision

__all__ = ["RuntimeConfig", "COMPILE_MODES"]

#: ``runtime.compile`` values (``true`` is torch's ``default`` mode).
COMPILE_MODES = (False, True, "default", "reduce-overhead", "max-autotune")


@dataclass(frozen=True)
class RuntimeConfig:
    """Execution settings.

    Attributes:
        device: ``auto`` (CUDA when available) | ``cpu`` | ``cuda`` | ``cuda:N``.
        precision: ``auto`` (bf16 where it is fast: CUDA, CPUs with native bf16; fp32 elsewhere) | ``bf16`` |
            ``fp32``. The resolved precision *is* part of a run's identity (bf16 trains differently).
        channels_last: ``auto`` (on) | ``true`` | ``false``.
        num_workers: DataLoader workers; -1 = auto (up to 8 on CUDA, 0 on the CPU).
        persistent_workers: keep the DataLoader workers for the whole run (default) instead of starting them again
            every epoch; the batches are the same either way (each sample is seeded by (seed, epoch, index)).
        image_cache: ``auto`` (on CUDA) | ``true`` | ``false``: read every image of the dataset from its decoded-image
            cache (:mod:`lib.data.image_cache`, built on first use next to the dataset's manifest) instead of decoding
            its file for every sample; the same pixels, so the same run.
        pin_memory: ``auto`` (on CUDA) | ``true`` | ``false``.
        sync_every: steps between host synchronisations (finite-loss check, logging); 0 = auto (1 on CPU, 25 on CUDA).
        compile: ``false`` (default) | ``true`` (= ``default``) | ``default`` | ``reduce-overhead`` | ``max-autotune``:
            ``torch.compile`` the trained modules and the frozen teacher with that mode (``reduce-overhead`` records
            CUDA graphs: the launch-free step of issue #22 §2; a batch of another shape, e.g. fewer HR images in a
            CAVIAR batch, records a graph of its own). Compilation takes minutes first; the first step's time is
            recorded apart (``first_step_s`` in ``history.csv``). Never part of an identity (same computation).
        cudnn_benchmark: ``auto`` (on CUDA) | ``true`` | ``false``: let cuDNN time its convolution algorithms for the
            step's fixed shapes (``torch.backends.cudnn.benchmark``).
        max_loss: a finite loss above it stops the run as diverged (1e6; raise it with ``sum`` reductions).
        max_steps_per_epoch: 0 = whole epochs; N cuts each epoch to N steps (smoke tests, benchmarks) — this one
            changes what is trained, so it *is* recorded in the identity of every stage.
        monitor_images: the first N training images with an HR original, on which a stage that trains an SR module
            measures G's restoration after every epoch (a stored LR image gives one pair, an HR-only one a pair per
            rate) (PSNR / SSIM against the HR original, and of G's own input, in ``history.csv``: ``g_psnr``,
            ``g_ssim``, ``input_psnr``, ``input_ssim``); 0 = off. It only observes: never part of an identity.
        checkpoint_every: epochs between resume checkpoints (``checkpoints/last.pt``; the last epoch always writes
            one). 1 (default) resumes a killed run from its last epoch; N > 1 writes 1/N of the checkpoints (≈ 281 MB
            each for the paper's phase 2) and a killed run repeats up to N − 1 epochs — bit-identically either way.
        keep_checkpoint: keep ``checkpoints/last.pt`` when a run finishes (default off: ``model.pt`` holds the
            trained modules; the resume state, optimiser included, is removed).
    """

    device: str = "auto"
    precision: str = "auto"
    channels_last: str | bool = "auto"
    num_workers: int = -1
    persistent_workers: bool = True
    image_cache: str | bool = "auto"
    pin_memory: str | bool = "auto"
    sync_every: int = 0
    compile: bool | str = False
    cudnn_benchmark: str | bool = "auto"
    max_loss: float = 1e6
    max_steps_per_epoch: int = 0
    monitor_images: int = 32
    checkpoint_every: int = 1
    keep_checkpoint: bool = False

    def __post_init__(self) -> None:
        if self.precision not in ("auto", "bf16", "fp32"):
            raise ValueError(f"precision: expected auto, bf16 or fp32, found {self.precision!r}")
        if self.channels_last not in ("auto", True, False):
            raise ValueError(f"channels_last: expected auto, true or false, found {self.channels_last!r}")
        if self.image_cache not in ("auto", True, False):
            raise ValueError(f"image_cache: expected auto, true or false, found {self.image_cache!r}")
        if self.compile not in COMPILE_MODES:
            raise ValueError(f"compile: expected one of {list(COMPILE_MODES)}, found {self.compile!r}")
        if self.cudnn_benchmark not in ("auto", True, False):
            raise ValueError(f"cudnn_benchmark: expected auto, true or false, found {self.cudnn_benchmark!r}")
        if self.pin_memory not in ("auto", True, False):
            raise ValueError(f"pin_memory: expected auto, true or false, found {self.pin_memory!r}")
        if self.num_workers < -1 or self.sync_every < 0 or self.max_steps_per_epoch < 0:
            raise ValueError("num_workers ≥ -1, sync_every ≥ 0 and max_steps_per_epoch ≥ 0 are required")
        if self.checkpoint_every < 1:
            raise ValueError(f"checkpoint_every: expected ≥ 1 (epochs between checkpoints), found {self.checkpoint_every}")
        if self.monitor_images < 0:
            raise ValueError(f"monitor_images: expected ≥ 0 (0 = off), found {self.monitor_images}")

    def precision_for(self) -> Precision:
        """The resolved :class:`Precision` on this machine."""
        return resolve_precision(resolve_device(self.device), self.precision, self.channels_last)

    def uses_image_cache(self) -> bool:
        """Whether runs read the decoded-image cache on this machine (``auto``: on CUDA)."""
        if self.image_cache == "auto":
            return resolve_device(self.device).type == "cuda"
        return bool(self.image_cache)

    def trainer_kwargs(self) -> dict:
        """The :class:`~lib.engine.Trainer` arguments these settings give."""
        return {"num_workers": self.num_workers, "persistent_workers": self.persistent_workers,
                "pin_memory": None if self.pin_memory == "auto" else self.pin_memory,
                "sync_every": self.sync_every, "compile": self.compile, "max_loss": self.max_loss,
                "cudnn_benchmark": None if self.cudnn_benchmark == "auto" else self.cudnn_benchmark,
                "max_steps_per_epoch": self.max_steps_per_epoch or None, "checkpoint_every": self.checkpoint_every}
