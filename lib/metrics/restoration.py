"""Restoration quality of an SR module ``G``: PSNR / SSIM of restored LR images against their HR originals.

PS-HRNet restores an LR query with ``G`` before re-identification; these functions measure how well it does
(the numbers under the paper's Fig. 5) and gather the examples of such a figure.

Conventions (the SR literature's, computed with scikit-image only, see :func:`image_quality`):

* the restored image and its reference are compared at the network input size, as 8-bit images: the
  reference is the HR original resized to that size (the training target of the (LR, HR) pairs), the restored
  image is ``G``'s output de-normalised, ×255, rounded and clipped (:func:`to_uint8`);
* ``space='y'`` (default): the luma channel Y of YCbCr (ITU-R BT.601, values 16–235); ``space='rgb'``: the
  three RGB channels;
* SSIM with Gaussian weights as in Wang et al. (σ = 1.5, population covariance).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..data.mlr_build import downsample, load_rgb, to_rgb8
from ..data.transforms import denormalize, normalize, resize, to_tensor

__all__ = ["SPACES", "to_uint8", "image_quality", "restoration_quality", "restored_examples", "restore_images", "EvalMode"]

#: Colour spaces :func:`image_quality` accepts.
SPACES = ("y", "rgb")
_INTERPOLATIONS = ("bilinear", "bicubic")


def _check_space(space: str) -> None:
    if space not in SPACES:
        raise ValueError(f"space must be 'y' (luma of YCbCr, BT.601) or 'rgb', got {space!r}")


def _check_interpolation(what: str, interpolation: str) -> None:
    if interpolation not in _INTERPOLATIONS:
        raise ValueError(f"{what} must be 'bilinear' or 'bicubic', got {interpolation!r}")


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """A normalised ``(B, 3, H, W)`` tensor → ``(B, H, W, 3)`` uint8 array.

    :func:`~lib.data.transforms.denormalize` (clamped to [0, 1]) in float32, ×255, rounded to the nearest
    integer (halves to even, ``torch.round``), clipped to 0..255.
    """
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"to_uint8: expected a (B, 3, H, W) tensor, got shape {tuple(x.shape)}")
    y = denormalize(x.detach().float().cpu()).mul_(255.0).round_().clamp_(0, 255)
    return y.to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


def _image_to_uint8(img: Image.Image) -> np.ndarray:
    """An RGB PIL image → ``(H, W, 3)`` uint8 (exactly what :func:`to_uint8` gives back for
    ``normalize(to_tensor(img))``)."""
    return np.asarray(to_rgb8(img), dtype=np.uint8).copy()  # high-bit-depth modes scaled, not clipped


def image_quality(restored: np.ndarray, reference: np.ndarray, space: str = "y") -> tuple[float, float]:
    """PSNR (dB) and SSIM of ``restored`` against ``reference``, both ``(H, W, 3)`` uint8 RGB arrays.

    Computed with scikit-image:

    * ``space='rgb'``: ``peak_signal_noise_ratio(reference, restored, data_range=255)`` on the uint8 arrays
      (MSE over all pixels and the three channels) and ``structural_similarity(reference, restored,
      data_range=255, channel_axis=-1, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)``
      (the mean of the per-channel SSIMs);
    * ``space='y'``: the same on the luma channel ``skimage.color.rgb2ycbcr(img)[..., 0]`` (ITU-R BT.601,
      float64 with values 16–235, the SR literature's convention), ``data_range=255``, no ``channel_axis``.

    SSIM uses an 11 × 11 Gaussian window (σ = 1.5, truncated at 3.5 σ), as in Wang et al. (2004), so both
    sides of the images must be at least 11 pixels. Identical images give PSNR ``inf``.
    """
    from skimage.color import rgb2ycbcr
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    _check_space(space)
    restored, reference = np.asarray(restored), np.asarray(reference)
    for name, a in (("restored", restored), ("reference", reference)):
        if a.dtype != np.uint8 or a.ndim != 3 or a.shape[-1] != 3:
            raise ValueError(f"image_quality: {name} must be an (H, W, 3) uint8 array, got {a.dtype} {a.shape}")
    if restored.shape != reference.shape:
        raise ValueError(f"image_quality: shapes differ: restored {restored.shape}, reference {reference.shape}")
    if min(reference.shape[:2]) < 11:
        raise ValueError(f"image_quality: SSIM's 11 × 11 Gaussian window needs images of at least 11 × 11 pixels, "
                         f"got {reference.shape[0]} × {reference.shape[1]}")
    ssim_kw = {"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False, "data_range": 255}
    if space == "rgb":
        a, b = reference, restored
        ssim_kw["channel_axis"] = -1
    else:
        a = rgb2ycbcr(reference)[..., 0].astype(np.float64)
        b = rgb2ycbcr(restored)[..., 0].astype(np.float64)
    with np.errstate(divide="ignore"):  # identical images: PSNR inf
        psnr = float(peak_signal_noise_ratio(a, b, data_range=255))
    ssim = float(structural_similarity(a, b, **ssim_kw))
    return psnr, ssim


class EvalMode:
    """Put modules in eval mode, and each back in its previous mode on exit."""

    def __init__(self, modules):
        self.modules = [m for m in modules if m is not None]

    def __enter__(self):
        self.modes = [m.training for m in self.modules]
        for m in self.modules:
            m.eval()
        return self

    def __exit__(self, *exc):
        for m, mode in zip(self.modules, self.modes):
            m.train(mode)
        return False


def _input_interpolation(sr) -> str:
    interp = "bilinear" if sr is None else getattr(sr, "input_interpolation", "bilinear")
    _check_interpolation(f"{type(sr).__name__}.input_interpolation", interp)
    return interp


def restore_images(sr, lr_images: Sequence[Image.Image], size: tuple[int, int], precision) -> np.ndarray:
    """LR images → resized to ``size`` with ``sr``'s input interpolation → normalised → ``sr`` (``None``:
    nothing) → ``(B, H, W, 3)`` uint8. The caller holds ``sr`` in eval mode (:class:`EvalMode`)."""
    interp = _input_interpolation(sr)
    x = torch.stack([normalize(to_tensor(resize(img, size, interp))) for img in lr_images])
    if sr is None:
        return to_uint8(x)
    with torch.no_grad(), precision.autocast():
        y = sr(precision.prepare_input(x))
    if tuple(y.shape) != tuple(x.shape):
        raise ValueError(f"SR module {type(sr).__name__} returned shape {tuple(y.shape)} for input {tuple(x.shape)}")
    return to_uint8(y)


def _rates_text(rates) -> str:
    return "{" + ", ".join(str(r) for r in sorted(rates)) + "}"


def restoration_quality(
    sr,
    images: Sequence,
    *,
    size: tuple[int, int],
    precision,
    space: str = "y",
    rates: Sequence[int] = (2, 3, 4),
    batch_size: int = 64,
    save_dir=None,
    reference_interpolation: str = "bilinear",
) -> dict:
    """Mean PSNR / SSIM of ``sr``'s restorations against the HR originals (see :func:`image_quality`).

    Args:
        sr: the SR module ``G`` (``(B, 3, H, W)`` normalised → same shape, on ``precision.device``), or ``None``
            for no SR (the LR image resized bilinearly). Its ``input_interpolation`` attribute (``'bilinear'``
            by default) resizes the LR image to ``size``. Run in eval mode under ``torch.no_grad()`` and
            ``precision.autocast()``; a module in train mode is put back in train mode afterwards.
        images: :class:`~lib.data.mlr_dataset.MLRImage` records. Each with a stored LR version (``lr_path``
            and ``r``) gives one pair: that LR file and its HR original. Each HR image without a stored LR
            version gives one pair per ``r`` in ``rates``: its LR version made as the MLR synthesis
            (:func:`~lib.data.mlr_build.downsample`, bicubic, antialiased). Images without an HR original (natively
            LR) — and LR records without a rate — are skipped and counted.
        size: network input ``(height, width)``: restored and reference are compared at this size.
        precision: a :class:`~lib.engine.precision.Precision`.
        space: ``'y'`` (default) or ``'rgb'``.
        rates: rates for HR images without a stored LR version.
        batch_size: images per forward pass of ``sr``.
        save_dir: if given, each restored image and its reference are written there as PNG,
            ``{i:05d}_r{r}_restored.png`` and ``{i:05d}_r{r}_reference.png`` (``i``: position in ``images``).
        reference_interpolation: how the HR original is resized to ``size`` (``'bilinear'``, as the
            training targets of the pairs).

    Returns:
        ``psnr``, ``ssim`` (means over all pairs), ``psnr_r{r}``, ``ssim_r{r}``, ``num_r{r}`` for each rate
        present, ``num_images`` (pairs evaluated), ``num_skipped`` (images skipped), ``source`` (``'stored LR
        queries'``, ``'HR images down-sampled at r ∈ {2, 3, 4}'`` or both joined by ``' and '``), ``space``.
    """
    _check_space(space)
    _check_interpolation("reference_interpolation", reference_interpolation)
    _input_interpolation(sr)
    if batch_size < 1:
        raise ValueError(f"batch_size must be ≥ 1, got {batch_size}")
    rates = [int(r) for r in rates]
    if any(r < 1 for r in rates):
        raise ValueError(f"rates must be ≥ 1, got {rates}")
    size = tuple(int(s) for s in size)

    images = list(images)
    # (index in images, r, stored) per pair to evaluate
    jobs: list[tuple[int, int, bool]] = []
    native = no_rate = hr_only = 0
    for i, im in enumerate(images):
        if not im.has_hr_original:
            native += 1
        elif im.lr_path is not None:
            if im.r is None:
                no_rate += 1
            else:
                jobs.append((i, int(im.r), True))
        else:
            hr_only += 1
            jobs.extend((i, r, False) for r in rates)
    skipped = native + no_rate
    if not jobs:
        why = [f"{native} natively low-resolution (no HR original)" if native else "",
               f"{no_rate} LR record(s) without a rate r" if no_rate else "",
               f"{hr_only} HR image(s) but rates is empty" if hr_only else ""]
        why = "; ".join(w for w in why if w) or "the list is empty"
        raise ValueError(f"restoration_quality: no usable image among the {len(images)} given ({why})")

    out_dir = Path(save_dir) if save_dir is not None else None
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    scores: list[tuple[int, float, float]] = []
    hr_cache: dict[int, tuple[Image.Image, np.ndarray]] = {}  # only within a batch (one image's rates)
    with EvalMode([sr]):
        for start in range(0, len(jobs), batch_size):
            batch = jobs[start : start + batch_size]
            lrs, refs = [], []
            for i, r, stored in batch:
                im = images[i]
                if i not in hr_cache:
                    hr = load_rgb(im.hr_path)
                    hr_cache[i] = (hr, _image_to_uint8(resize(hr, size, reference_interpolation)))
                hr, ref = hr_cache[i]
                lrs.append(load_rgb(im.lr_path) if stored else downsample(hr, r, "bicubic", True))
                refs.append(ref)
            hr_cache.clear()
            restored = restore_images(sr, lrs, size, precision)
            for (i, r, _), res, ref in zip(batch, restored, refs):
                psnr, ssim = image_quality(res, ref, space)
                scores.append((r, psnr, ssim))
                if out_dir is not None:
                    Image.fromarray(res).save(out_dir / f"{i:05d}_r{r}_restored.png")
                    Image.fromarray(ref).save(out_dir / f"{i:05d}_r{r}_reference.png")

    result: dict = {
        "psnr": float(np.mean([p for _, p, _ in scores])),
        "ssim": float(np.mean([s for _, _, s in scores])),
    }
    for r in sorted({r for r, _, _ in scores}):
        sel = [(p, s) for rr, p, s in scores if rr == r]
        result[f"psnr_r{r}"] = float(np.mean([p for p, _ in sel]))
        result[f"ssim_r{r}"] = float(np.mean([s for _, s in sel]))
        result[f"num_r{r}"] = len(sel)
    sources = []
    if any(stored for _, _, stored in jobs):
        sources.append("stored LR queries")
    synth = {r for _, r, stored in jobs if not stored}
    if synth:
        sources.append(f"HR images down-sampled at r ∈ {_rates_text(synth)}")
    result.update(num_images=len(scores), num_skipped=skipped, source=" and ".join(sources), space=space)
    return result


def restored_examples(
    modules: Mapping[str, object],
    images: Sequence,
    *,
    size: tuple[int, int],
    precision,
    rates: Sequence[int] = (2, 3, 4),
    num_persons: int = 2,
    seed: int = 0,
    space: str = "y",
    reference_interpolation: str = "bilinear",
) -> list[dict]:
    """Examples for a Fig. 5-style grid: persons' HR originals down-sampled at each r and restored.

    ``num_persons`` distinct identities among the images with an HR original are drawn with ``seed`` (one
    image each, also drawn with ``seed``). Each HR original is down-sampled at each ``r`` as the MLR synthesis
    (:func:`~lib.data.mlr_build.downsample`, bicubic, antialiased) and restored by each module of ``modules``
    (``name → SR module or None``; ``None``: the LR image resized bilinearly; a module: resized with its
    ``input_interpolation``, run as in :func:`restoration_quality`).

    Returns one dict per (person, r), persons in pid order then r ascending: ``pid``, ``index`` (position
    in ``images``), ``r``, ``lr`` (uint8 ``(h, w, 3)`` at its true size), ``hr`` (uint8 reference at ``size``,
    the HR original resized with ``reference_interpolation``), ``restored`` (``name → uint8 at size``),
    ``psnr`` and ``ssim`` (``name → float``, :func:`image_quality` in ``space``), ``space``.
    """
    _check_space(space)
    _check_interpolation("reference_interpolation", reference_interpolation)
    if not modules:
        raise ValueError("restored_examples: no module given")
    for m in modules.values():
        _input_interpolation(m)
    rates = sorted(int(r) for r in rates)
    if not rates or any(r < 1 for r in rates):
        raise ValueError(f"restored_examples: rates must be a non-empty list of rates ≥ 1, got {rates}")
    if num_persons < 1:
        raise ValueError(f"restored_examples: num_persons must be ≥ 1, got {num_persons}")
    size = tuple(int(s) for s in size)
    by_pid: dict[int, list[int]] = {}
    for i, im in enumerate(images):
        if im.has_hr_original:
            by_pid.setdefault(int(im.pid), []).append(i)
    if not by_pid:
        raise ValueError(f"restored_examples: none of the {len(images)} images has an HR original")
    rng = np.random.default_rng(seed)
    pids = sorted(by_pid)
    chosen = sorted(int(p) for p in rng.choice(pids, size=min(num_persons, len(pids)), replace=False))
    examples = []
    with EvalMode(modules.values()):
        for pid in chosen:
            idx = by_pid[pid][int(rng.integers(len(by_pid[pid])))]
            hr = load_rgb(images[idx].hr_path)
            ref = _image_to_uint8(resize(hr, size, reference_interpolation))
            lrs = [downsample(hr, r, "bicubic", True) for r in rates]
            restored = {name: restore_images(m, lrs, size, precision) for name, m in modules.items()}
            for k, (r, lr) in enumerate(zip(rates, lrs)):
                ex = {"pid": pid, "index": idx, "r": r, "lr": _image_to_uint8(lr), "hr": ref,
                      "restored": {}, "psnr": {}, "ssim": {}, "space": space}
                for name in modules:
                    ex["restored"][name] = restored[name][k]
                    ex["psnr"][name], ex["ssim"][name] = image_quality(restored[name][k], ref, space)
                examples.append(ex)
    return examples
