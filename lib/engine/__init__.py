"""Training and evaluation machinery shared by every method of the workbook."""

from .checkpoint import UnsafeCheckpointError, load_checkpoint, save_checkpoint
from .evaluate import RANKS, evaluate_split
from .precision import Precision, resolve_device, resolve_precision
from .trainer import NonFiniteLossError, OptimConfig, Trainer, lr_factor

__all__ = [
    "RANKS",
    "NonFiniteLossError",
    "OptimConfig",
    "Precision",
    "Trainer",
    "UnsafeCheckpointError",
    "evaluate_split",
    "load_checkpoint",
    "lr_factor",
    "resolve_device",
    "resolve_precision",
    "save_checkpoint",
]
