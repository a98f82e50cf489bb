"""Checkpoints written atomically every epoch, with everything a bit-exact resume needs — and read safely.

A checkpoint holds the trainable modules, the optimiser, the epoch, the history so far, the run's config
(to refuse resuming a different run) and the states of every random number generator (python, numpy,
torch CPU and CUDA): with the data pipeline seeded per (seed, epoch, index), a run killed after epoch e
and resumed ends with the same weights and metrics as an uninterrupted one.

Run folders and checkpoints travel between researchers (``python -m lib.rank --run`` on someone else's run), and a
pickle can run any code while it is read. So every checkpoint is read with PyTorch's restricted unpickler
(``torch.load(weights_only=True)``): tensors, numbers, strings and plain containers only. What a checkpoint holds
beyond tensors is stored in exactly those types (the numpy RNG state as a tensor, the configuration as JSON
values). Checkpoints written before that stored the numpy state as a ``numpy.ndarray``; the three numpy globals
needed to rebuild such an array (:data:`LEGACY_SAFE_GLOBALS`, which construct plain arrays and numbers, nothing else)
are allowed, so those runs resume as before. A file the restricted reader refuses raises
:class:`UnsafeCheckpointError` naming the file and the refused global — never a fallback to the unsafe loader.
"""

from __future__ import annotations

import io
import os
import pickle
import random
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..utils.io import atomic_write_bytes

__all__ = ["save_checkpoint", "load_checkpoint", "rng_state", "set_rng_state", "UnsafeCheckpointError",
           "LEGACY_SAFE_GLOBALS"]

_multiarray = np._core.multiarray if hasattr(np, "_core") else np.core.multiarray  # numpy 2 / numpy 1

#: What rebuilds a plain ``numpy.ndarray`` or numpy scalar (the numpy RNG state, and numbers, of checkpoints written
#: before the state was kept as a tensor). ``_reconstruct`` makes an empty array of an allowed type and ``scalar`` a
#: number from its dtype and bytes; only numeric dtypes are allowed (no object arrays), so nothing here can call
#: arbitrary code.
LEGACY_SAFE_GLOBALS = [_multiarray._reconstruct, _multiarray.scalar, np.ndarray, np.dtype] + [
    # the same two functions under numpy 1.x's module name (checkpoints written with numpy < 2)
    (_multiarray._reconstruct, "numpy.core.multiarray._reconstruct"), (_multiarray.scalar, "numpy.core.multiarray.scalar"),
] + [type(np.dtype(t)) for t in ("?", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f2", "f4", "f8")]


class UnsafeCheckpointError(RuntimeError):
    """A checkpoint holds Python objects that the restricted (``weights_only``) unpickler refuses; it was not loaded
    and none of its code ran."""


def rng_state() -> dict[str, Any]:
    """Snapshot of python, numpy and torch RNG states, in types the restricted unpickler reads.

    numpy's Mersenne-Twister state is ``(name, keys, pos, has_gauss, cached_gaussian)``; its 624 ``uint32`` keys are
    kept as an ``int64`` tensor (exact), the rest as plain numbers.
    """
    name, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    st = {"python": random.getstate(),
          "numpy": (str(name), torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)),
          "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def set_rng_state(st: dict[str, Any]) -> None:
    """Restore a :func:`rng_state` snapshot (also the older form holding the numpy keys as an ``ndarray``)."""
    random.setstate(st["python"])
    name, keys, *rest = st["numpy"]
    keys = keys.numpy() if torch.is_tensor(keys) else np.asarray(keys)
    np.random.set_state((name, keys.astype(np.uint32), *rest))
    torch.set_rng_state(st["torch"])
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """``torch.save`` to memory, then an atomic write: a crash never leaves a truncated checkpoint.

    ``state`` must hold only what :func:`load_checkpoint` reads back: tensors, numbers, strings, plain containers.
    """
    buf = io.BytesIO()
    torch.save(state, buf)
    return atomic_write_bytes(path, buf.getvalue())


def _refused(e: Exception) -> str:
    """What the restricted unpickler refused (a global such as ``posix.system``, an opcode, a type), from its message:
    PyTorch words it differently by case and wraps it in paragraphs of general advice (with terminal escapes)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(e))
    m = re.search(r"GLOBAL ([\w.]+)", text)
    if m:
        return f"it refers to {m.group(1)}, which the safe loader does not allow"
    m = re.search(r"WeightsUnpickler error:\s*(.+)", text)
    if m:
        return " ".join(m.group(1).split())[:300]
    boiler = ("weights only load failed", "check the documentation", "please file an issue")
    para = next((p for p in text.split("\n\n") if p.strip() and not p.strip().lower().startswith(boiler)), text)
    return " ".join(para.split())[:300]


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` with the restricted unpickler; errors name the file.

    Raises:
        FileNotFoundError: no such file.
        UnsafeCheckpointError: the file holds Python objects beyond tensors and plain containers (a pickle that
            would run code, or a checkpoint not written by this workbook); nothing of it was executed.
        RuntimeError: the file is not a readable checkpoint (truncated, another format).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        with torch.serialization.safe_globals(LEGACY_SAFE_GLOBALS), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Detected pickle protocol")  # a plain pickle: refused below
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        if "weights only" in str(e).lower() or "weights_only" in str(e):
            raise UnsafeCheckpointError(
                f"checkpoint {path} was refused: it holds Python objects beyond tensors and plain containers "
                f"({_refused(e)}). The workbook never writes such files, so this one was made elsewhere or altered; "
                "loading it could run code, so it was not loaded and nothing in it ran. Delete it (or its run "
                "folder) to retrain, or ask its author for the run again.") from None
        raise RuntimeError(f"checkpoint {path} cannot be read ({type(e).__name__}: {e}); if it was cut short (a killed "
                           "copy or a full disk), delete it to start over") from None
    except Exception as e:
        raise RuntimeError(f"checkpoint {path} cannot be read ({type(e).__name__}: {e}); if it was cut short (a killed "
                           "copy or a full disk), delete it to start over") from None
