"""Image transforms, including the paired augmentation that treats an (LR, HR) pair as one image.

PROTOCOL §2: every image is resized to 256 × 128 (bilinear, as the authors' code) before the network;
training augmentation is a horizontal flip and pad-10 + random crop back to the size, applied *identically*
to both images of a pair so that pixel-wise losses (L_SR) and feature-wise losses (L_PS) compare aligned
content.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "to_tensor", "resize", "AugmentDraw", "PairedAugment", "normalize",
           "denormalize"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_RESAMPLE = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC}


def resize(img: Image.Image, size: tuple[int, int], interpolation: str = "bilinear") -> Image.Image:
    """Resize a PIL image to ``size = (height, width)``."""
    h, w = size
    if img.size == (w, h):
        return img
    return img.resize((w, h), _RESAMPLE[interpolation])


def to_tensor(img: Image.Image) -> torch.Tensor:
    """PIL RGB → float tensor (3, H, W) in [0, 1]."""
    arr = np.asarray(img, dtype=np.uint8)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(255.0)


def normalize(x: torch.Tensor, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> torch.Tensor:
    """Channel-wise normalisation of a (…, 3, H, W) tensor."""
    m = torch.tensor(mean, dtype=x.dtype, device=x.device).view(3, 1, 1)
    s = torch.tensor(std, dtype=x.dtype, device=x.device).view(3, 1, 1)
    return (x - m) / s


def denormalize(x: torch.Tensor, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> torch.Tensor:
    """Inverse of :func:`normalize`, clamped to [0, 1] (for display and PSNR/SSIM)."""
    m = torch.tensor(mean, dtype=x.dtype, device=x.device).view(3, 1, 1)
    s = torch.tensor(std, dtype=x.dtype, device=x.device).view(3, 1, 1)
    return (x * s + m).clamp(0, 1)


@dataclass(frozen=True)
class AugmentDraw:
    """One sample's augmentation: flip or not, the crop's top-left corner in the padded image, and the erased box
    ``(y, x, height, width)`` (``None``: nothing erased)."""

    flip: bool
    top: int
    left: int
    erase: tuple[int, int, int, int] | None = None


@dataclass(frozen=True)
class PairedAugment:
    """Horizontal flip + pad + random crop with one set of random parameters for all given tensors.

    Args:
        flip_prob: probability of a horizontal flip (0.5).
        pad: zero padding on every side before the random crop back to the input size (10 px at 256 × 128).
        erase_prob: probability of random erasing (Zhong et al. 2020, as in torchreid / BoT): one rectangle of
            2–40 % of the image area, aspect ratio 0.3–3.3, filled with the ImageNet mean (zero after
            normalisation), at the same place in every image. 0 (paper: none) disables it.
    """

    flip_prob: float = 0.5
    pad: int = 10
    erase_prob: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.flip_prob <= 1.0 or not 0.0 <= self.erase_prob <= 1.0:
            raise ValueError(f"PairedAugment: probabilities must lie in [0, 1], found flip {self.flip_prob}, erase {self.erase_prob}")
        if self.pad < 0:
            raise ValueError(f"PairedAugment: pad must be ≥ 0, found {self.pad}")

    def _erase_box(self, h: int, w: int, rng: np.random.Generator) -> tuple[int, int, int, int] | None:
        for _ in range(100):
            area = rng.uniform(0.02, 0.4) * h * w
            aspect = float(np.exp(rng.uniform(np.log(0.3), np.log(1 / 0.3))))
            eh, ew = int(round((area * aspect) ** 0.5)), int(round((area / aspect) ** 0.5))
            if 0 < eh < h and 0 < ew < w:
                return int(rng.integers(0, h - eh + 1)), int(rng.integers(0, w - ew + 1)), eh, ew
        return None

    def draw(self, height: int, width: int, rng: np.random.Generator) -> AugmentDraw:
        """The random parameters of one sample at network size ``height × width``, drawn from ``rng`` in the order
        :meth:`__call__` draws them (flip, crop offsets, then the erasing box): the PIL and the tensor data path
        (:mod:`lib.data.tensor_pipeline`) augment a sample identically."""
        flip = bool(rng.random() < self.flip_prob)
        top = int(rng.integers(0, 2 * self.pad + 1))
        left = int(rng.integers(0, 2 * self.pad + 1))
        box = None
        if self.erase_prob > 0 and rng.random() < self.erase_prob:
            box = self._erase_box(height, width, rng)
        return AugmentDraw(flip, top, left, box)

    def apply(self, images: Sequence[torch.Tensor], d: AugmentDraw) -> list[torch.Tensor]:
        """Flip, pad + crop and erase each (3, H, W) tensor with the parameters ``d``."""
        out = []
        for t in images:
            h, w = t.shape[-2:]
            if d.flip:
                t = torch.flip(t, dims=[-1])
            if self.pad > 0:
                t = F.pad(t, (self.pad, self.pad, self.pad, self.pad))
                t = t[..., d.top : d.top + h, d.left : d.left + w]
            out.append(t)
        if d.erase is not None:
            y, x, eh, ew = d.erase
            mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
            for t in out:
                t[..., y : y + eh, x : x + ew] = mean.to(t.dtype)
        return out

    def __call__(self, images: Sequence[torch.Tensor], rng: np.random.Generator) -> list[torch.Tensor]:
        """Apply the same flip and crop to each (3, H, W) tensor (all must share H, W)."""
        shapes = {tuple(t.shape[-2:]) for t in images}
        if len(shapes) != 1:
            raise ValueError(f"PairedAugment: all images must have the same size, found {sorted(shapes)}")
        h, w = shapes.pop()
        return self.apply(images, self.draw(h, w, rng))
