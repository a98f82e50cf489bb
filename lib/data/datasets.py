"""torch datasets over an MLR split: single images (test, phase 1) and (LR, HR) pairs (phase 2)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from . import tensor_pipeline as tp
from .mlr_build import downsample, load_rgb
from .mlr_dataset import MLRImage
from .transforms import PairedAugment, normalize, resize, to_tensor

__all__ = ["ImageDataset", "PairDataset", "relabel", "PAIR_MODES"]

#: How :class:`PairDataset` forms the LR side of a pair.
PAIR_MODES = ("fresh", "mlr", "stored")


def relabel(pids: Sequence[int]) -> dict[int, int]:
    """Map the sorted unique pids to 0..N-1 (classifier labels)."""
    return {p: i for i, p in enumerate(sorted(set(int(p) for p in pids)))}


class _SplitDataset(Dataset):
    """Shared plumbing: the images, classifier labels (0..N-1 over their pids) and the epoch for seeding.

    The epoch lives in a shared-memory tensor, so DataLoader workers that outlive an epoch (``persistent_workers``)
    read the epoch :meth:`set_epoch` set in the main process, not the one they were started with.
    """

    def __init__(self, images: Sequence[MLRImage], size: tuple[int, int], seed: int, resize_interpolation: str,
                 pipeline: str = "pil"):
        tp.check_pipeline(pipeline, resize_interpolation)
        self.pipeline = pipeline
        self.images = list(images)
        self.size = tuple(size)
        self.seed = seed
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()
        self.resize_interpolation = resize_interpolation
        self.labels = relabel(im.pid for im in self.images)

    @property
    def epoch(self) -> int:
        return int(self._epoch)

    def set_epoch(self, epoch: int) -> None:
        """Augmentation (and fresh rates) of the coming epoch depend on (seed, epoch, index) only."""
        self._epoch.fill_(int(epoch))

    @property
    def pids(self) -> list[int]:
        return [im.pid for im in self.images]

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    def __len__(self) -> int:
        return len(self.images)

    @property
    def collate_fn(self):
        """How a DataLoader batches the items: ``None`` (torch's default) for the PIL path, the tensor path's
        :func:`~lib.data.tensor_pipeline.collate_raw`."""
        return tp.collate_raw if self.pipeline == "tensor" else None

    def render(self, batch: dict, device) -> dict:
        """A loader's batch as the training step takes it: the PIL path's as it is; the tensor path's images made on
        ``device`` (:mod:`lib.data.tensor_pipeline`)."""
        return batch if self.pipeline == "pil" else self._render(batch, torch.device(device))

    def _render(self, batch: dict, device: torch.device) -> dict:
        raise NotImplementedError

    def _augment_draw(self, rng: np.random.Generator):
        return None if self.augment is None else self.augment.draw(*self.size, rng)

    def _finish(self, x: list[torch.Tensor], batch: dict) -> torch.Tensor:
        """Network-size images (0..255) → augmented, normalised batch."""
        x = torch.stack(x).div_(255.0)
        if self.augment is not None:
            x = tp.augment_batch(x, batch, self.augment.pad)
        return tp.normalize_batch(x)


class ImageDataset(_SplitDataset):
    """Single images resized to ``size``; optionally augmented (flip + pad/crop) for training.

    Args:
        images: the split's images.
        size: network input ``(height, width)``; 256 × 128 in the paper.
        use: ``'stored'`` — the image as in the MLR dataset (LR for query images), or ``'hr'`` — the original.
        augment: a :class:`PairedAugment` for training, ``None`` for testing.
        seed: with the epoch (:meth:`set_epoch`) and the index, seeds the augmentation of each sample, so
            a resumed run sees the same augmentations.
        resize_interpolation: ``'bilinear'`` (authors' code) or ``'bicubic'``.
        downsample_rate: first down-sample the image by this rate as the MLR synthesis does (bicubic, anti-aliased),
            e.g. FTWA's LR version of an HR gallery image; ``None`` (default): as it is.
        pipeline: ``'pil'`` (default): items are finished images; ``'tensor'``: raw items that :meth:`render` finishes
            on the device (:mod:`lib.data.tensor_pipeline`).

    Items are dicts: ``img`` (3, H, W) normalised, ``pid``, ``label`` (0..N-1), ``camid``, ``index``.
    """

    def __init__(
        self,
        images: Sequence[MLRImage],
        size: tuple[int, int] = (256, 128),
        *,
        use: str = "stored",
        augment: PairedAugment | None = None,
        seed: int = 0,
        resize_interpolation: str = "bilinear",
        downsample_rate: int | None = None,
        pipeline: str = "pil",
    ):
        if use not in ("stored", "hr"):
            raise ValueError(f"ImageDataset: use must be 'stored' or 'hr', got {use!r}")
        if not images:
            raise ValueError("ImageDataset: no images")
        super().__init__(images, size, seed, resize_interpolation, pipeline)
        self.use = use
        self.augment = augment
        self.downsample_rate = downsample_rate

    def __getitem__(self, i: int) -> dict:
        im = self.images[i]
        if self.pipeline == "tensor":
            d = self._augment_draw(np.random.default_rng([self.seed, self.epoch, i])) if self.augment else None
            return {"img_u8": tp.raw_image(im.hr_path if self.use == "hr" else im.path), **tp.draw_fields(d),
                    "pid": im.pid, "label": self.labels[im.pid], "camid": im.camid, "index": i}
        img = load_rgb(im.hr_path if self.use == "hr" else im.path)
        if self.downsample_rate:
            img = downsample(img, int(self.downsample_rate), "bicubic", True)
        x = to_tensor(resize(img, self.size, self.resize_interpolation))
        if self.augment is not None:
            (x,) = self.augment([x], np.random.default_rng([self.seed, self.epoch, i]))
        return {"img": normalize(x), "pid": im.pid, "label": self.labels[im.pid], "camid": im.camid, "index": i}

    def _render(self, batch: dict, device: torch.device) -> dict:
        x = tp.images_of(batch, "img_u8", device)
        if self.downsample_rate:
            r = int(self.downsample_rate)
            x = tp.resample(x, [tp.down_size(*t.shape[-2:], r) for t in x], "bicubic")
        x = tp.resample(x, [self.size] * len(x), self.resize_interpolation)
        keep = ("pid", "label", "camid", "index")
        return {"img": self._finish(x, batch)} | {k: batch[k] for k in keep}


class PairDataset(_SplitDataset):
    """(LR, HR) training pairs with identical augmentation on both images (PROTOCOL §2).

    Args:
        images: training images of a split.
        size: network input ``(height, width)``.
        pair_mode: ``'fresh'`` (paper, default): the HR original is down-sampled by a fresh r drawn from
            ``rates`` for every sample; ``'mlr'`` (authors' code): the image as stored in the MLR dataset
            (LR for the LR camera, HR otherwise) is paired with its HR original; ``'stored'`` (FTWA): LR images
            as stored (the LR camera's), HR images down-sampled by a fresh r.
        native_lr: natively LR images (CAVIAR camera 2) have no HR original. ``True`` (default): they are
            items too, with ``has_hr`` ``False`` and an all-zero ``hr`` placeholder (the losses that need an HR
            image skip them; L_ID trains on them); ``False``: they are left out (counted in ``num_excluded``).
        rates: rates for ``'fresh'`` pairs.
        interpolation, antialias: how ``'fresh'`` LR images are made (as the MLR synthesis).
        resize_interpolation: how the LR image is brought to ``size`` (the SR module's ``input_interpolation``).
        hr_interpolation: how the HR image is brought to ``size`` — the SR target, the same for every module
            (``'bilinear'``).
        augment: shared flip + pad/crop; ``None`` disables augmentation.
        seed: seeds r and the augmentation per (epoch, index).
        pipeline: ``'pil'`` (default) or ``'tensor'`` (raw items, finished on the device by :meth:`render`:
            :mod:`lib.data.tensor_pipeline`).

    Items: ``lr``, ``hr`` (3, H, W normalised), ``has_hr``, ``lr_input`` (the LR side is an LR image as stored, not
    one down-sampled for this sample: FTWA's I_LR), ``pid``, ``label``, ``camid``, ``r`` (0 when the LR side is an
    HR image in ``'mlr'`` mode or a natively LR image), ``index``.
    """

    def __init__(
        self,
        images: Sequence[MLRImage],
        size: tuple[int, int] = (256, 128),
        *,
        pair_mode: str = "fresh",
        rates: Sequence[int] = (2, 3, 4),
        interpolation: str = "bicubic",
        antialias: bool = True,
        augment: PairedAugment | None = PairedAugment(),
        seed: int = 0,
        resize_interpolation: str = "bilinear",
        native_lr: bool = True,
        hr_interpolation: str = "bilinear",
        pipeline: str = "pil",
    ):
        tp.check_pipeline(pipeline, interpolation, hr_interpolation)
        if pair_mode not in PAIR_MODES:
            raise ValueError(f"PairDataset: pair_mode must be one of {PAIR_MODES}, got {pair_mode!r}")
        with_hr = [im for im in images if im.has_hr_original]
        kept = list(images) if native_lr else with_hr
        self.num_excluded = len(images) - len(kept)
        self.num_native_lr = len(images) - len(with_hr) if native_lr else 0
        if not with_hr:
            raise ValueError(
                f"PairDataset: none of the {len(images)} training images has an HR original "
                "(a natively low-resolution dataset cannot form (LR, HR) pairs)"
            )
        super().__init__(kept, size, seed, resize_interpolation, pipeline)
        self.hr_interpolation = hr_interpolation
        self.pair_mode = pair_mode
        self.rates = [int(r) for r in rates]
        self.interpolation = interpolation
        self.antialias = antialias
        self.augment = augment

    def __getitem__(self, i: int) -> dict:
        if self.pipeline == "tensor":
            return self._raw(i)
        im = self.images[i]
        rng = np.random.default_rng([self.seed, self.epoch, i])
        hr_img = load_rgb(im.hr_path)
        stored = im.res == "lr"
        if not im.has_hr_original:  # natively LR: the image itself, no HR side
            r, lr_img, hr_img = 0, hr_img, None
        elif self.pair_mode == "fresh" or (self.pair_mode == "stored" and not stored):
            r, stored = int(rng.choice(self.rates)), False
            lr_img = downsample(hr_img, r, self.interpolation, self.antialias)
        else:
            r = int(im.r or 0)
            lr_img = load_rgb(im.lr_path) if im.lr_path is not None else hr_img
        lr = to_tensor(resize(lr_img, self.size, self.resize_interpolation))
        hr = to_tensor(resize(hr_img, self.size, self.hr_interpolation)) if hr_img is not None else None
        if self.augment is not None:
            lr, *rest = self.augment([lr] if hr is None else [lr, hr], rng)
            hr = rest[0] if rest else None
        return {
            "lr": normalize(lr),
            "hr": normalize(hr) if hr is not None else torch.zeros_like(lr),
            "has_hr": hr is not None,
            "lr_input": stored,
            "pid": im.pid,
            "label": self.labels[im.pid],
            "camid": im.camid,
            "r": r,
            "index": i,
        }

    def _raw(self, i: int) -> dict:
        """The tensor path's item: the uint8 images it needs and its draws, in the order :meth:`__getitem__` draws."""
        im = self.images[i]
        rng = np.random.default_rng([self.seed, self.epoch, i])
        hr = tp.raw_image(im.hr_path)
        stored, lr, down = im.res == "lr", tp.EMPTY, 0
        if not im.has_hr_original:  # natively LR: the image itself, no HR side
            r, lr, hr = 0, hr, tp.EMPTY
        elif self.pair_mode == "fresh" or (self.pair_mode == "stored" and not stored):
            r, stored = int(rng.choice(self.rates)), False
            down = r
        else:
            r = int(im.r or 0)
            if im.lr_path is not None:
                lr = tp.raw_image(im.lr_path)
        d = self._augment_draw(rng)
        return {"hr_u8": hr, "lr_u8": lr, "down": down, **tp.draw_fields(d), "has_hr": im.has_hr_original,
                "lr_input": stored, "pid": im.pid, "label": self.labels[im.pid], "camid": im.camid, "r": r,
                "index": i}

    def _render(self, batch: dict, device: torch.device) -> dict:
        hr, lr = tp.images_of(batch, "hr_u8", device), tp.images_of(batch, "lr_u8", device)
        down = batch["down"].tolist()
        # the LR side: the stored / native image, the HR image itself ('mlr', HR camera), or made from it by r
        made = [k for k, r in enumerate(down) if r]
        if made:
            small = [tp.down_size(*hr[k].shape[-2:], down[k]) for k in made]
            # without anti-aliasing: the plain call lib.data.mlr_build.downsample makes
            new = tp.resample([hr[k] for k in made], small, self.interpolation, antialias=self.antialias)
            for k, x in zip(made, new):
                lr[k] = x
        lr = [x if x is not None else hr[k] for k, x in enumerate(lr)]
        lr = tp.resample(lr, [self.size] * len(lr), self.resize_interpolation)
        present = [k for k, x in enumerate(hr) if x is not None]
        hr_net = tp.resample([hr[k] for k in present], [self.size] * len(present), self.hr_interpolation)
        full = [torch.zeros_like(lr[0])] * len(lr)
        for k, x in zip(present, hr_net):
            full[k] = x
        both = self._finish(lr + full, batch)  # one augmentation pass over the LR then the HR images
        lr_out, hr_out = both[: len(lr)], both[len(lr):]
        for k in set(range(len(lr))) - set(present):  # no HR original: the PIL path's all-zero placeholder
            hr_out[k] = 0.0
        keep = ("has_hr", "lr_input", "pid", "label", "camid", "r", "index")
        return {"lr": lr_out, "hr": hr_out} | {k: batch[k] for k in keep}
