"""Decoded images, once per dataset (issue #22 §1): every image of an MLR dataset as uint8 RGB pixels in one file,
memory-mapped, so training and evaluation stop decoding PNG / JPEG / BMP files for every sample of every epoch.

Layout, next to the dataset's manifest (``OUT`` of :mod:`lib.data.mlr_build`)::

    OUT/cache/images-<manifest sha256[:16]>.u8      the pixels, image after image (H × W × 3 bytes each)
    OUT/cache/images-<manifest sha256[:16]>.json    written last: format, manifest hash, total bytes, per image
                                                    ``[offset, height, width]`` under the index's ``images``

The name carries the manifest's content hash: a rebuilt dataset (another seed, another source) gets a cache of its
own and never reads a stale one. A cache whose pixel file is shorter or longer than its index says (a copy cut
short, a full disk) is refused with an error naming the file. Nothing in it is code: JSON and raw bytes.

The cache changes where pixels come from, not which: :func:`activate` makes :func:`lib.data.mlr_build.load_rgb` return
the cached pixels of every image of the dataset (``Image.fromarray`` of the decoded RGB8 array, the same pixels as
decoding the file), so every dataset class, every method and the evaluation read it without knowing; runs are
bit-identical with and without it (``tests/test_image_cache.py``). It is ``runtime.image_cache`` (not part of any
run identity). DataLoader workers started by ``fork`` (Linux's default) inherit the active caches.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["ImageCache", "CacheError", "cache_paths", "build_cache", "open_cache", "activate", "deactivate",
           "lookup", "CACHE_FORMAT"]

CACHE_FORMAT = "workbook-image-cache/1"
#: path → (cache, offset, height, width) of every image of the active caches (this process and its forks).
_ACTIVE: dict[str, tuple[ImageCache, int, int, int]] = {}


class CacheError(ValueError):
    """An image cache that cannot be used (truncated, another format, another dataset)."""


def cache_paths(ds) -> tuple[Path, Path]:
    """``(pixels, index)`` of the cache of MLR dataset ``ds`` (next to the manifest it was loaded from)."""
    stem = f"images-{ds.fingerprint[:16]}"
    folder = Path(ds.manifest_path).parent / "cache"
    return folder / f"{stem}.u8", folder / f"{stem}.json"


def _files(ds) -> list[Path]:
    """Every image file a dataset's items read: originals and synthesised LR images, in manifest order."""
    out: dict[str, Path] = {}
    for im in ds.images:
        for p in (im.hr_path, im.lr_path):
            if p is not None:
                out.setdefault(str(p), Path(p))
    return list(out.values())


class ImageCache:
    """The pixels of one dataset: :meth:`array` is a zero-copy view of one image (the file is mapped on first use,
    in each process)."""

    def __init__(self, pixels: Path, index: dict[str, Any]) -> None:
        self.pixels, self.index = Path(pixels), index
        self._map: np.memmap | None = None

    def __getstate__(self) -> dict:  # a worker started by spawn maps the file itself
        return {"pixels": self.pixels, "index": self.index, "_map": None}

    @property
    def num_images(self) -> int:
        return len(self.index["images"])

    def array(self, offset: int, height: int, width: int) -> np.ndarray:
        if self._map is None:
            self._map = np.memmap(self.pixels, dtype=np.uint8, mode="r")
        return self._map[offset:offset + height * width * 3].reshape(height, width, 3)


def build_cache(ds, *, progress: bool = False) -> ImageCache:
    """Decode every image of ``ds`` into its cache (:func:`cache_paths`) and return it; an existing complete cache
    is returned as it is. Written atomically: the pixels first, the index last; concurrent builders wait for each
    other (a file lock next to the cache)."""
    import filelock
    from tqdm.auto import tqdm

    from ..utils.progress import bars_off
    from ..utils.io import atomic_write_json
    from .mlr_build import load_rgb

    pixels, index = cache_paths(ds)
    pixels.parent.mkdir(parents=True, exist_ok=True)
    with filelock.FileLock(str(index) + ".lock"):
        found = open_cache(ds)
        if found is not None:
            return found
        tmp = pixels.with_name(pixels.name + f".{os.getpid()}.tmp")
        images: dict[str, list[int]] = {}
        offset = 0
        try:
            with open(tmp, "wb") as f:
                for p in tqdm(_files(ds), desc=f"cache {ds.name}", disable=bars_off(progress), leave=False):
                    arr = np.ascontiguousarray(np.asarray(_decode(load_rgb, p), dtype=np.uint8))
                    f.write(arr.tobytes())
                    images[str(p)] = [offset, int(arr.shape[0]), int(arr.shape[1])]
                    offset += arr.nbytes
            os.replace(tmp, pixels)
        finally:
            tmp.unlink(missing_ok=True)
        atomic_write_json(index, {"format": CACHE_FORMAT, "manifest_sha256": ds.fingerprint, "dataset": ds.name,
                                  "bytes": offset, "images": images})
    return open_cache(ds)


def _decode(load_rgb, path: Path):
    """``load_rgb`` of the file itself, never of an active cache (a cache is built from the files)."""
    hit = _ACTIVE.pop(str(path), None)
    try:
        return load_rgb(path)
    finally:
        if hit is not None:
            _ACTIVE[str(path)] = hit


def open_cache(ds) -> ImageCache | None:
    """The complete cache of ``ds``, ``None`` when there is none. A cache that does not match (another format,
    another manifest, a pixel file of the wrong size) raises :class:`CacheError` naming the file."""
    pixels, index = cache_paths(ds)
    if not index.is_file():
        return None
    try:
        idx = json.loads(index.read_text())
    except ValueError as e:
        raise CacheError(f"{index}: not a readable image-cache index ({e}); delete it (and {pixels.name}) to "
                         "rebuild the cache") from None
    if not isinstance(idx, dict) or idx.get("format") != CACHE_FORMAT or idx.get("manifest_sha256") != ds.fingerprint:
        found = {k: idx.get(k) for k in ("format", "manifest_sha256")} if isinstance(idx, dict) else type(idx).__name__
        raise CacheError(f"{index}: expected format {CACHE_FORMAT!r} for manifest {ds.fingerprint[:16]}…, found "
                         f"{found}; delete it (and {pixels.name}) to rebuild the cache")
    size = pixels.stat().st_size if pixels.is_file() else None
    if size != idx.get("bytes"):
        raise CacheError(f"{pixels}: truncated or altered image cache: its index {index.name} says {idx.get('bytes')} "
                         f"bytes, the file has {'none (missing)' if size is None else size}; delete both to rebuild it")
    return ImageCache(pixels, idx)


def activate(cache: ImageCache) -> None:
    """From now on (in this process and the workers it forks), :func:`lib.data.mlr_build.load_rgb` reads the images of
    ``cache`` from it."""
    for path, (offset, h, w) in cache.index["images"].items():
        _ACTIVE[path] = (cache, offset, h, w)


def deactivate(cache: ImageCache | None = None) -> None:
    """Stop reading ``cache`` (``None``: every cache)."""
    for path in [p for p, v in _ACTIVE.items() if cache is None or v[0] is cache]:
        del _ACTIVE[path]


def lookup(path) -> np.ndarray | None:
    """The cached pixels (H × W × 3 uint8, read-only) of image file ``path``, ``None`` when no active cache has it."""
    hit = _ACTIVE.get(str(path))
    return None if hit is None else hit[0].array(*hit[1:])
