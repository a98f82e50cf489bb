"""Feature extraction and query-gallery distance matrices, and the named distances a feature file can ask for."""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ..core.registry import Registry
from ..utils.progress import bars_off

__all__ = ["extract_features", "cosine_distance", "euclidean_distance", "DISTANCES", "distance_matrix"]

#: Target size (bytes) of one chunk of the distance computation's temporaries.
_CHUNK_BYTES = 64 * 2**20


# --------------------------------------------------------------------------- extraction
def _labels(x: Any) -> np.ndarray:
    """Batch labels (tensor, list or array) as a 1-D int64 numpy array."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x).astype(np.int64).reshape(-1)


def _forward(model: nn.Module, img: torch.Tensor) -> torch.Tensor:
    """Model output as a (B, D) tensor; raise TypeError when the model does not return a tensor."""
    out = model(img)
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"model: expected a tensor output in eval mode, found {type(out).__name__}")
    return out.reshape(out.shape[0], -1)


@contextlib.contextmanager
def _eval_mode(model: nn.Module):
    """Put every submodule in eval mode; restore each one's own previous mode on exit."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, training in modes:
            m.training = training


def extract_features(
    model: nn.Module,
    loader: Iterable[Mapping[str, Any]],
    *,
    device: str | torch.device = "cpu",
    flip: bool = True,
    normalize: bool = True,
    amp_dtype: torch.dtype | None = None,
    progress: bool = True,
) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """Embed every image of ``loader`` with ``model``.

    Args:
        model: maps a (B, 3, H, W) float batch to (B, D) features in eval mode.
        loader: yields dicts with ``img`` (B, 3, H, W float tensor), ``pid`` and
            ``camid`` (tensors or lists of length B).
        device: where the model runs (the model is expected to live there already).
        flip: add the features of the horizontally flipped images
            (``torch.flip(img, dims=[3])``) before normalising.
        normalize: L2-normalise the features (after flip-summing).
        amp_dtype: if set (e.g. ``torch.bfloat16``), run under ``torch.autocast``
            on the device type with that dtype.
        progress: show a ``tqdm.auto`` progress bar.

    Returns:
        ``(features, pids, camids)``: float32 (N, D) CPU tensor, int64 (N,) numpy arrays.

    The model is put in eval mode and each submodule's previous mode is restored
    afterwards, also when an exception is raised. Runs under ``torch.inference_mode()``.

    Raises:
        ValueError: when a batch lacks a key, its labels do not match its size,
            or the loader yields nothing.
    """
    device = torch.device(device)
    autocast = (
        torch.autocast(device_type=device.type, dtype=amp_dtype) if amp_dtype is not None else contextlib.nullcontext()
    )
    feats: list[torch.Tensor] = []
    pids: list[np.ndarray] = []
    camids: list[np.ndarray] = []
    total = len(loader) if hasattr(loader, "__len__") else None
    with _eval_mode(model), torch.inference_mode():
        for i, batch in enumerate(tqdm(loader, total=total, desc="features", disable=bars_off(progress), leave=False)):
            missing = [k for k in ("img", "pid", "camid") if k not in batch]
            if missing:
                raise ValueError(f"loader: batch {i} lacks key(s) {missing}")
            img = batch["img"].to(device, non_blocking=True)
            b_pid, b_cam = _labels(batch["pid"]), _labels(batch["camid"])
            if b_pid.shape[0] != img.shape[0] or b_cam.shape[0] != img.shape[0]:
                raise ValueError(
                    f"loader: batch {i} has {img.shape[0]} images but {b_pid.shape[0]} pids and {b_cam.shape[0]} camids"
                )
            with autocast:
                f = _forward(model, img).float()
                if flip:
                    f = f + _forward(model, torch.flip(img, dims=[3])).float()
            if normalize:
                f = F.normalize(f, p=2, dim=1)
            feats.append(f.to("cpu", torch.float32))
            pids.append(b_pid)
            camids.append(b_cam)
    if not feats:
        raise ValueError("loader: yielded no batch")
    return torch.cat(feats), np.concatenate(pids), np.concatenate(camids)


# --------------------------------------------------------------------------- distances
def _as_features(x: Any, name: str) -> torch.Tensor:
    """2-D float (at least float32) CPU tensor from a tensor or array."""
    t = x.detach().cpu() if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    if t.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D array (N, D), found shape {tuple(t.shape)}")
    if t.dtype != torch.float64:
        t = t.to(torch.float32)
    return t


def _check_pair(qf: Any, gf: Any) -> tuple[torch.Tensor, torch.Tensor]:
    q, g = _as_features(qf, "qf"), _as_features(gf, "gf")
    if q.shape[1] != g.shape[1]:
        raise ValueError(f"gf: expected feature dimension {q.shape[1]} (as qf), found shape {tuple(g.shape)}")
    dtype = torch.promote_types(q.dtype, g.dtype)
    return q.to(dtype), g.to(dtype)


def _rows_per_chunk(num_gallery: int, itemsize: int) -> int:
    return max(1, _CHUNK_BYTES // (max(1, num_gallery) * itemsize))


def cosine_distance(qf: Any, gf: Any) -> np.ndarray:
    """``1 - q·g`` for every (query, gallery) pair; features are expected L2-normalised.

    Computed in chunks of queries (temporaries bounded by ~64 MB) straight into
    the float32 (num_query, num_gallery) result.
    """
    q, g = _check_pair(qf, gf)
    out = np.empty((q.shape[0], g.shape[0]), dtype=np.float32)
    gt = g.t()
    step = _rows_per_chunk(g.shape[0], q.element_size())
    for s in range(0, q.shape[0], step):
        sim = torch.mm(q[s : s + step], gt)
        out[s : s + step] = (1.0 - sim).numpy()
    return out


def euclidean_distance(qf: Any, gf: Any) -> np.ndarray:
    """Squared euclidean distances ``|q|² + |g|² - 2 q·g`` clamped at 0, float32 (num_query, num_gallery).

    Computed in chunks of queries so the temporaries stay bounded (~64 MB).
    """
    q, g = _check_pair(qf, gf)
    out = np.empty((q.shape[0], g.shape[0]), dtype=np.float32)
    g2 = (g * g).sum(dim=1)[None, :]
    gt = g.t()
    step = _rows_per_chunk(g.shape[0], q.element_size())
    for s in range(0, q.shape[0], step):
        qc = q[s : s + step]
        d = torch.addmm(g2 + (qc * qc).sum(dim=1, keepdim=True), qc, gt, beta=1.0, alpha=-2.0)
        out[s : s + step] = d.clamp_(min=0).numpy()
    return out


# --------------------------------------------------------------------------- named distances
#: Distances by name: ``name -> fn(qf, gf, **params)`` giving the float32 (num_query, num_gallery) matrix of two 2-D
#: feature arrays. A feature file (:mod:`lib.features`) names one with its parameters in its ``metric``; a method
#: whose test compares images otherwise registers its own (FTWA's weighted distance, ``ftwa``).
DISTANCES = Registry("distance")


def _l2_rows(x: Any) -> torch.Tensor:
    return F.normalize(_as_features(x, "features"), p=2, dim=1)


def _flag(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name}: expected true or false, found {value!r}")
    return value


@DISTANCES.register("cosine")
def _cosine(qf: Any, gf: Any, *, normalize: bool = True) -> np.ndarray:
    """``1 - cos(q, g)``: the rows L2-normalised first (``normalize=False``: they are already, used as they are —
    what the runs of this workbook export, so the distances are bit for bit the run's)."""
    if _flag(normalize, "normalize"):
        qf, gf = _l2_rows(qf), _l2_rows(gf)
    return cosine_distance(qf, gf)


@DISTANCES.register("euclidean")
def _euclidean(qf: Any, gf: Any, *, normalize: bool = False) -> np.ndarray:
    """Squared euclidean distance (torchreid's ``euclidean``), of L2-normalised rows with ``normalize=True``."""
    if _flag(normalize, "normalize"):
        qf, gf = _l2_rows(qf), _l2_rows(gf)
    return euclidean_distance(qf, gf)


def distance_matrix(qf: Any, gf: Any, metric: Mapping[str, Any]) -> np.ndarray:
    """The distances of ``metric`` — ``{"distance": NAME, **params}``, NAME in :data:`DISTANCES` — between the rows
    of ``qf`` and ``gf``.

    Raises:
        ValueError: ``metric`` names no registered distance, or parameters that distance does not take (the message
            lists the registered names / the parameters it takes).
    """
    if not isinstance(metric, Mapping) or not isinstance(metric.get("distance"), str):
        raise ValueError(f"metric: expected an object with a 'distance' name (one of {', '.join(DISTANCES.names())}), "
                         f"found {metric!r}")
    name = metric["distance"]
    if name not in DISTANCES:
        raise ValueError(f"metric: unknown distance {name!r}; registered: {', '.join(DISTANCES.names())}")
    fn = DISTANCES.get(name)
    params = {k: v for k, v in metric.items() if k != "distance"}
    takes = list(inspect.signature(fn).parameters.values())[2:]
    unknown = sorted(set(params) - {p.name for p in takes})
    missing = [p.name for p in takes if p.default is inspect.Parameter.empty and p.name not in params]
    if unknown or missing:
        what = (f"has no parameter {', '.join(map(repr, unknown))}" if unknown else
                f"needs the parameter {', '.join(map(repr, missing))}")
        raise ValueError(f"metric: distance {name!r} {what} (it takes: {', '.join(p.name for p in takes) or 'none'})")
    return fn(qf, gf, **params)
