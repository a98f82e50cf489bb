"""The tensor data path (issue #22 §1, ``data.pipeline: tensor``): DataLoader workers only gather uint8 images;
the pixel work of a training sample runs batched, with torch, on the training device.

What the PIL path (:mod:`lib.data.datasets`, ``data.pipeline: pil``, the default) does per sample in a worker, in
PIL and numpy, the tensor path does per batch on the device, in the same order and with the same random draws:

1. fresh LR images: the HR original down-sampled by the sample's r to ``(round(H/r), round(W/r))`` (PROTOCOL §1;
   ``F.interpolate(..., antialias=True)``, the anti-aliased filter PIL uses; without anti-aliasing, the very call the
   PIL path makes) and rounded to 8 bits, as a stored image is;
2. both images resized to the network size (PROTOCOL §2; bilinear or bicubic, anti-aliased as PIL), rounded to 8 bits;
3. flip, zero pad + crop and random erasing (:class:`~lib.data.transforms.PairedAugment`, whose parameters the worker
   draws with :meth:`~lib.data.transforms.PairedAugment.draw` from the same per-sample generator, so both paths flip,
   crop and erase the same samples at the same places), then the ImageNet normalisation.

Images of one shape (and target size) are resampled together: one call per distinct shape in a batch (VIPeR: one
shape, three rates). The only difference from the PIL path is the resampling arithmetic (PIL filters in 8-bit
fixed point and rounds between its horizontal and vertical pass; torch filters in float32): at most a few of 255
levels on a small share of the pixels, measured by ``tests/test_tensor_pipeline.py`` and stated in
``docs/performance.md``. The pipeline is part of a run's identity when it is ``tensor`` (another pixel path is
another run); ``pil`` runs keep their identities.

A dataset built with ``pipeline="tensor"`` yields raw items (``*_u8`` images as ``H × W × 3`` uint8 tensors plus
the sample's draws); its ``collate_fn`` (:func:`collate_raw`) pads a batch's images to one tensor, and its
``render(batch, device)`` turns the batch into what the PIL path's batch holds (``lr`` / ``hr`` / ``img``, float,
normalised, on ``device``; labels and flags stay where the loader put them). The generic trainer and the
evaluation call both, so no method step knows which path fed it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import default_collate

from .transforms import IMAGENET_MEAN, IMAGENET_STD, AugmentDraw

__all__ = ["PIPELINES", "EMPTY", "load_rgb_array", "raw_image", "draw_fields", "collate_raw", "resample",
           "augment_batch", "normalize_batch", "images_of", "down_size", "check_pipeline"]

#: ``data.pipeline`` values: where a training sample's pixels are made.
PIPELINES = ("pil", "tensor")
#: The placeholder of an absent image (no HR original, no stored LR image): 0 × 0 pixels.
EMPTY = torch.zeros((0, 0, 3), dtype=torch.uint8)
_MODES = ("bilinear", "bicubic")
#: The ImageNet mean / std per device (made once: a new small host tensor copied to a GPU waits for it).
_CONSTANTS: dict = {}


def load_rgb_array(path) -> np.ndarray:
    """The image at ``path`` as ``H × W × 3`` uint8: the decoded-image cache's pixels (:mod:`.image_cache`) when it
    is active, else the file decoded by :func:`lib.data.mlr_build.load_rgb` (the same pixels either way)."""
    from .image_cache import lookup
    from .mlr_build import load_rgb

    cached = lookup(path)
    return cached if cached is not None else np.asarray(load_rgb(path), dtype=np.uint8)


def raw_image(path) -> torch.Tensor:
    """:func:`load_rgb_array` as a tensor a DataLoader can send (a copy: a memory-mapped cache page is read-only)."""
    return torch.from_numpy(np.array(load_rgb_array(path), dtype=np.uint8, copy=True))


def draw_fields(d: AugmentDraw | None) -> dict[str, Any]:
    """A sample's augmentation draws as item fields (``aug``: 0/1, ``flip``, ``top``, ``left``, ``erase`` y/x/h/w
    with height 0 for none)."""
    if d is None:
        return {"aug": False, "flip": False, "top": 0, "left": 0, "erase": torch.zeros(4, dtype=torch.int64)}
    box = d.erase or (0, 0, 0, 0)
    return {"aug": True, "flip": d.flip, "top": d.top, "left": d.left, "erase": torch.tensor(box, dtype=torch.int64)}


def collate_raw(items: Sequence[dict]) -> dict[str, Any]:
    """A batch of raw items: every ``*_u8`` image field zero-padded to the batch's largest image, ``(B, Hmax, Wmax,
    3)`` uint8, with its true sizes in ``<field>_hw`` ``(B, 2)``; every other field as ``default_collate`` makes it."""
    if not items:
        raise ValueError("collate_raw: an empty batch")
    images = [k for k in items[0] if k.endswith("_u8")]
    out = default_collate([{k: v for k, v in it.items() if k not in images} for it in items])
    for k in images:
        hw = torch.tensor([tuple(it[k].shape[:2]) for it in items], dtype=torch.int64)
        hm, wm = (int(x) for x in hw.max(0).values)
        buf = torch.zeros((len(items), hm, wm, 3), dtype=torch.uint8)
        for i, it in enumerate(items):
            h, w = it[k].shape[:2]
            buf[i, :h, :w] = it[k]
        out[k], out[k + "_hw"] = buf, hw
    return out


def _quantize(x: torch.Tensor) -> torch.Tensor:
    """Round to 8-bit levels (0..255), as every resampling of the PIL path ends."""
    return x.round_().clamp_(0.0, 255.0)


def _constant(name: str, values, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    key = (name, str(device), dtype)
    if key not in _CONSTANTS:
        _CONSTANTS[key] = torch.tensor(values, dtype=dtype).view(1, 3, 1, 1).to(device)
    return _CONSTANTS[key]


def _interpolate(x: torch.Tensor, size: tuple[int, int], mode: str, antialias: bool) -> torch.Tensor:
    """One 1-D or 2-D resampling; enlarging bilinearly, the anti-aliased filter is the plain one (faster)."""
    enlarge = mode == "bilinear" and size[0] >= x.shape[-2] and size[1] >= x.shape[-1]
    return F.interpolate(x, size=size, mode=mode, align_corners=False, antialias=antialias and not enlarge)


def resample(images: Sequence[torch.Tensor], sizes: Sequence[tuple[int, int]], mode: str, *, antialias: bool = True,
             quantize: bool = True) -> list[torch.Tensor]:
    """Resize each ``(3, h, w)`` float image (0..255) to its ``(height, width)``, batched per distinct
    ``(h, w, height, width)``; an image already at its size is returned as it is (PIL's ``resize`` does the same).

    Like PIL, an anti-aliased resampling that changes both sides is two 1-D passes, the width first, each rounded
    and clipped to 8 bits: a bicubic kernel overshoots, and PIL clips the overshoot before its second pass (one 2-D
    call would carry it on: up to 15 levels away from PIL on VIPeR's LR images). ``antialias`` selects torch's
    anti-aliased filter (PIL's: when shrinking, the kernel widened by the scale; bicubic with a = −0.5); off, the
    plain 2-D ``F.interpolate`` call :func:`lib.data.mlr_build.downsample` makes without anti-aliasing (bicubic a = −0.75).
    """
    if mode not in _MODES:
        raise ValueError(f"resample: the tensor data path resamples with {list(_MODES)}, found {mode!r} "
                         "(use data.pipeline: pil)")
    out: list[torch.Tensor | None] = [None] * len(images)
    groups: dict[tuple[int, int, int, int], list[int]] = {}
    for i, (x, (h, w)) in enumerate(zip(images, sizes)):
        if tuple(x.shape[-2:]) == (h, w):
            out[i] = x
        else:
            groups.setdefault((*x.shape[-2:], h, w), []).append(i)
    for (h0, w0, h, w), idx in groups.items():
        y = torch.stack([images[i] for i in idx])
        if antialias and h0 != h and w0 != w:  # PIL: horizontal pass, 8-bit intermediate, vertical pass
            y = _interpolate(y, (h0, w), mode, True)
            y = _quantize(y) if quantize else y
            y = _interpolate(y, (h, w), mode, True)
        else:
            y = _interpolate(y, (h, w), mode, antialias)
        if quantize:
            y = _quantize(y)
        for j, i in enumerate(idx):
            out[i] = y[j]
    return out  # type: ignore[return-value]


def augment_batch(x: torch.Tensor, batch: dict, pad: int) -> torch.Tensor:
    """:meth:`~lib.data.transforms.PairedAugment.apply` for a ``(B, 3, H, W)`` batch in [0, 1] with the drawn
    parameters of ``batch`` (``aug``, ``flip``, ``top``, ``left``, ``erase``): flip, zero pad + crop, erase with the
    ImageNet mean. ``x`` may hold several images per sample (``(n·B, 3, H, W)``, the pair's LR images then its HR
    images): each gets its sample's parameters.

    The parameters stay on the host (the loader's tensors, read as Python numbers), so nothing here waits for the
    device: a flipped sample is cropped from the flipped padded batch (padding is symmetric, so flipping before
    padding is flipping after it), every crop is a view and one stack copies them; an erased box is one fill."""
    if not bool(torch.as_tensor(batch["aug"]).any()):
        return x
    n, _, h, w = x.shape
    reps = n // len(batch["aug"])

    def per_image(key: str) -> list:  # a sample's parameter for each of its images, as Python values
        return torch.as_tensor(batch[key]).tolist() * reps

    aug, flip, top, left = (per_image(k) for k in ("aug", "flip", "top", "left"))
    xp = F.pad(x, (pad, pad, pad, pad)) if pad > 0 else x
    xf = xp.flip(-1) if any(a and f for a, f in zip(aug, flip)) else None
    crops = []
    for i in range(n):
        src = xf if aug[i] and flip[i] else xp
        t, l_ = (top[i], left[i]) if aug[i] else (pad, pad)
        crops.append(src[i, :, t:t + h, l_:l_ + w])
    x = torch.stack(crops)
    boxes = torch.as_tensor(batch["erase"]).tolist() * reps  # y, x, height, width; height 0 = none
    mean = None
    for i, (y0, x0, eh, ew) in enumerate(boxes):
        if aug[i] and eh > 0:
            mean = _constant("mean", IMAGENET_MEAN, x.device, x.dtype)[0] if mean is None else mean
            x[i, :, y0:y0 + eh, x0:x0 + ew] = mean
    return x


def normalize_batch(x: torch.Tensor) -> torch.Tensor:
    """The ImageNet normalisation of a ``(B, 3, H, W)`` batch in [0, 1] (:func:`lib.data.transforms.normalize`)."""
    return (x - _constant("mean", IMAGENET_MEAN, x.device, x.dtype)) / _constant("std", IMAGENET_STD, x.device, x.dtype)


def images_of(batch: dict, key: str, device) -> list[torch.Tensor | None]:
    """The ``(3, h, w)`` float (0..255) images of field ``key`` of a collated batch, on ``device`` (``None`` where the
    item had none)."""
    buf = batch[key].to(device, non_blocking=True).permute(0, 3, 1, 2).float()  # one conversion; views below
    return [buf[i, :, :h, :w] if h else None for i, (h, w) in enumerate(batch[key + "_hw"].tolist())]


def down_size(h: int, w: int, r: int) -> tuple[int, int]:
    """The size an ``h × w`` image down-sampled by ``r`` has (:func:`lib.data.mlr_build.downsample`: PIL's rounding)."""
    return max(1, round(h / r)), max(1, round(w / r))


def check_pipeline(pipeline: str, *interpolations: str) -> None:
    """A clear error for an unknown pipeline, or for a resampling filter only the PIL path has (the tensor path
    resamples bilinearly or bicubically)."""
    if pipeline not in PIPELINES:
        raise ValueError(f"data.pipeline: expected one of {PIPELINES}, found {pipeline!r}")
    bad = [m for m in interpolations if m not in _MODES]
    if pipeline == "tensor" and bad:
        raise ValueError(f"data.pipeline tensor resamples with {list(_MODES)}, found {bad[0]!r} (lanczos and nearest "
                         "exist only in PIL): use data.pipeline: pil")
