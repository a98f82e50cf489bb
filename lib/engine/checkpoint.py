"""Checkpoints written atomically every epoch, with everything a bit-exact resume needs.

A checkpoint holds the trainable modules, the optimiser, the epoch, the history so far, the run's config
(to refuse resuming a different run) and the states of every random number generator (python, numpy,
torch CPU and CUDA): with the data pipeline seeded per (seed, epoch, index), a run killed after epoch e
and resumed ends with the same weights and metrics as an uninterrupted one.
"""

from __future__ import annotations

import io
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..utils.io import atomic_write_bytes

__all__ = ["save_checkpoint", "load_checkpoint", "rng_state", "set_rng_state"]


def rng_state() -> dict[str, Any]:
    """Snapshot of python, numpy and torch RNG states."""
    st = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def set_rng_state(st: dict[str, Any]) -> None:
    """Restore a :func:`rng_state` snapshot."""
    random.setstate(st["python"])
    np.random.set_state(st["numpy"])
    torch.set_rng_state(st["torch"])
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """``torch.save`` to memory, then an atomic write: a crash never leaves a truncated checkpoint."""
    buf = io.BytesIO()
    torch.save(state, buf)
    return atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint`; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        return torch.load(path, map_location=map_location, weights_only=False)
    except Exception as e:
        raise RuntimeError(f"checkpoint {path} cannot be read ({type(e).__name__}: {e}); delete it to start over") from None
