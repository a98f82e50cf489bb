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
_MODES = ("bilinear", "bicubic", "nearest")


def load_rgb_array(path) -> np.ndarray:
    """The image at ``path`` as ``H × W × 3`` uint8: the decoded-image cache's pixels (:mod:`.image_cache`) when it
    is active, else the file decoded by :func:`lib.data.mlr.load_rgb` (the same pixels either way)."""
    from .image_cache import lookup
    from .mlr import load_rgb

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


def resample(images: Sequence[torch.Tensor], sizes: Sequence[tuple[int, int]], mode: str, *, antialias: bool = True,
             quantize: bool = True) -> list[torch.Tensor]:
    """Resize each ``(3, h, w)`` float image (0..255) to its ``(height, width)``, batched per distinct
    ``(h, w, height, width)``; an image already at its size is returned as it is (PIL's ``resize`` does the same).

    ``antialias`` selects torch's anti-aliased filter (the one PIL applies when it shrinks; for enlarging it is
    plain bilinear / bicubic with PIL's a = −0.5 kernel), off: ``F.interpolate``'s plain filter (bicubic a = −0.75),
    what :func:`lib.data.mlr.downsample` calls without anti-aliasing.
    """
    if mode not in _MODES:
        raise ValueError(f"resample: the tensor data path resamples with {list(_MODES)}, found {mode!r} "
                         "(lanczos exists only in PIL: use data.pipeline: pil)")
    out: list[torch.Tensor | None] = [None] * len(images)
    groups: dict[tuple[int, int, int, int], list[int]] = {}
    for i, (x, (h, w)) in enumerate(zip(images, sizes)):
        if tuple(x.shape[-2:]) == (h, w):
            out[i] = x
        else:
            groups.setdefault((*x.shape[-2:], h, w), []).append(i)
    for (_, _, h, w), idx in groups.items():
        x = torch.stack([images[i] for i in idx])
        if mode == "nearest":  # PIL's nearest takes the pixel under the centre ("nearest-exact"); torch's plain one
            y = F.interpolate(x, size=(h, w), mode="nearest-exact" if antialias else "nearest")
        else:  # enlarging bilinearly, the anti-aliased filter is the plain one (the same pixels, faster)
            enlarge = mode == "bilinear" and h >= x.shape[-2] and w >= x.shape[-1]
            y = F.interpolate(x, size=(h, w), mode=mode, align_corners=False, antialias=antialias and not enlarge)
        if quantize:
            y = _quantize(y)
        for j, i in enumerate(idx):
            out[i] = y[j]
    return out  # type: ignore[return-value]


def augment_batch(x: torch.Tensor, batch: dict, pad: int) -> torch.Tensor:
    """:meth:`~lib.data.transforms.PairedAugment.apply` for a ``(B, 3, H, W)`` batch in [0, 1] with the drawn
    parameters of ``batch`` (``aug``, ``flip``, ``top``, ``left``, ``erase``): flip, zero pad + crop, erase with the
    ImageNet mean. ``x`` may hold several images per sample (``(n·B, 3, H, W)``, the pair's LR images then its HR
    images): each gets its sample's parameters. The parameters are host tensors (the loader's), so nothing here
    waits for the device: the flipped images are flipped in one call, the crops are views stacked in one copy."""
    if not bool(torch.as_tensor(batch["aug"]).any()):
        return x
    n, _, h, w = x.shape
    dev = x.device
    b = len(batch["aug"])

    def per_image(v) -> torch.Tensor:  # a sample's parameter for each of its images (host side)
        return torch.as_tensor(v).repeat(n // b)

    aug = per_image(batch["aug"]).bool()
    flip = (per_image(batch["flip"]).bool() & aug).nonzero().squeeze(1)
    if len(flip):
        x = x.clone()
        x[flip.to(dev)] = x[flip.to(dev)].flip(-1)
    if pad > 0:
        xp = F.pad(x, (pad, pad, pad, pad))
        top = torch.where(aug, per_image(batch["top"]), pad).tolist()
        left = torch.where(aug, per_image(batch["left"]), pad).tolist()
        x = torch.stack([xp[i, :, t:t + h, left_:left_ + w] for i, (t, left_) in enumerate(zip(top, left))])
    aug = aug.to(dev)
    erase = torch.as_tensor(batch["erase"])
    if bool(erase[:, 2].gt(0).any()):  # (B, 4): y, x, height, width; height 0 = none
        box = erase.to(dev).repeat(n // b, 1)
        ys = torch.arange(h, device=dev).view(1, h, 1)
        xs = torch.arange(w, device=dev).view(1, 1, w)
        y0, x0, eh, ew = (box[:, k].view(n, 1, 1) for k in range(4))
        m = (ys >= y0) & (ys < y0 + eh) & (xs >= x0) & (xs < x0 + ew) & aug.view(n, 1, 1)
        mean = torch.tensor(IMAGENET_MEAN, dtype=x.dtype, device=dev).view(1, 3, 1, 1)
        x = torch.where(m.unsqueeze(1), mean, x)
    return x


def normalize_batch(x: torch.Tensor) -> torch.Tensor:
    """The ImageNet normalisation of a ``(B, 3, H, W)`` batch in [0, 1] (:func:`lib.data.transforms.normalize`)."""
    m = torch.tensor(IMAGENET_MEAN, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    s = torch.tensor(IMAGENET_STD, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x - m) / s


def images_of(batch: dict, key: str, device) -> list[torch.Tensor | None]:
    """The ``(3, h, w)`` float (0..255) images of field ``key`` of a collated batch, on ``device`` (``None`` where the
    item had none)."""
    buf = batch[key].to(device, non_blocking=True).permute(0, 3, 1, 2).float()  # one conversion; views below
    return [buf[i, :, :h, :w] if h else None for i, (h, w) in enumerate(batch[key + "_hw"].tolist())]


def down_size(h: int, w: int, r: int) -> tuple[int, int]:
    """The size an ``h × w`` image down-sampled by ``r`` has (:func:`lib.data.mlr.downsample`: PIL's rounding)."""
    return max(1, round(h / r)), max(1, round(w / r))


def check_pipeline(pipeline: str, interpolation: str = "bicubic", antialias: bool = True) -> None:
    """A clear error for an unknown pipeline or a down-sampling only PIL has (lanczos)."""
    if pipeline not in PIPELINES:
        raise ValueError(f"data.pipeline: expected one of {PIPELINES}, found {pipeline!r}")
    if pipeline == "tensor" and interpolation not in _MODES:
        raise ValueError(f"data.pipeline tensor resamples with {list(_MODES)}; the LR images are made with "
                         f"{interpolation!r}: use data.pipeline: pil")

