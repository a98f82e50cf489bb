"""MLR (multiple low-resolution) dataset synthesis, PROTOCOL §1.

One camera per dataset (or per camera pair) becomes low-resolution: each of its images is down-sampled by a
rate r ∈ {2, 3, 4} and stored at its true small size (H/r × W/r), never pre-upsampled. Everything random is
drawn from the seed, and the output folder gets a JSON manifest that names the source, the seed, the LR
camera(s), r per image, the interpolation, the splits and the sha256 of the source file list — so a table
row can say exactly what it was computed on. The same inputs give byte-identical output.

Output folder (:mod:`lib.data.mlr_store`: every build is complete and immutable, and switched in atomically)::

    OUT/manifest.json -> builds/<id>/manifest.json     the current build (a symlink)
    OUT/builds/<id>/lr/<source path>.png               the synthesised LR images
    OUT/builds/<id>/manifest.json                      written last: a build without it is incomplete

Query = LR images, gallery = HR images, for every dataset. Gallery images are never down-sampled (for
Market-1501/DukeMTMC-reID the LR camera's gallery images keep their original resolution).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..utils.io import atomic_write_bytes, atomic_write_json, sha256_bytes
from .image_cache import lookup
from .readers.caviar import two_camera_identities
from .readers.cuhk03 import read_cuhk03_split_file
from .readers.torchreid_splits import SplitFile, read_torchreid_splits, split_file_summary
from .mlr_store import MANIFEST_NAME, MLRBuildError, build_lock, check_legacy, lr_mismatch, publish, staging_dir
from .records import ImageReadError, SourceDataset
from .registry import DatasetInfo, get_dataset
from .splits import identity_overlap, random_identity_splits

__all__ = ["MLRConfig", "build_mlr", "downsample", "load_rgb", "to_rgb8", "MANIFEST_NAME", "MANIFEST_FORMAT", "main"]

MANIFEST_FORMAT = "crossres-reid-mlr/1"
INTERPOLATIONS = ("bicubic", "bilinear", "lanczos", "nearest")
_PIL_MODES = {
    "bicubic": Image.Resampling.BICUBIC,
    "bilinear": Image.Resampling.BILINEAR,
    "lanczos": Image.Resampling.LANCZOS,
    "nearest": Image.Resampling.NEAREST,
}


@dataclass(frozen=True)
class MLRConfig:
    """Everything that determines an MLR dataset (recorded in its manifest).

    Attributes:
        dataset: registry name (``viper``, ``caviar``, ``cuhk03``, ``market1501``, ``dukemtmc``, ``csv``,
            ``synthetic``).
        seed: seeds the LR camera choice, the rates and the identity splits.
        rates: down-sampling rates r to draw from.
        interpolation: ``bicubic`` (default, PROTOCOL §1), ``bilinear``, ``lanczos`` or ``nearest``.
        antialias: low-pass filter before down-sampling (PIL's resampling); ``False`` uses torch's
            non-antialiased interpolation (bicubic/bilinear/nearest only), as some public scripts did.
        num_splits: number of random identity splits (``None``: the dataset's default, 10).
        lr_cameras: override the dataset's LR camera(s) (0-based ids).
        split_file: a torchreid split file to take the identity splits from (:mod:`lib.data.readers.torchreid_splits`):
            VIPeR's ``splits.json`` (training and test identities of each split; identical splits kept once) or
            CUHK03's ``splits_classic_*.json`` / ``splits_new_*.json`` (the test identities; the others train). The
            manifest records the file, its sha256 and which entries gave each split (``split_file``).
        cuhk03_variant: ``labeled`` or ``detected``.
        num_train_ids, num_test_ids: override the sizes of random identity splits (default: the dataset's
            protocol, e.g. VIPeR 316/316, CAVIAR 25/25, CUHK03 1367/100).
    """

    dataset: str
    seed: int = 0
    rates: tuple[int, ...] = (2, 3, 4)
    interpolation: str = "bicubic"
    antialias: bool = True
    num_splits: int | None = None
    lr_cameras: tuple[int, ...] | None = None
    split_file: str | None = None
    cuhk03_variant: str = "labeled"
    num_train_ids: int | None = None
    num_test_ids: int | None = None

    def validate(self) -> None:
        get_dataset(self.dataset)
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise ValueError(f"MLRConfig.seed: expected an integer ≥ 0, found {self.seed!r}")
        if not isinstance(self.antialias, bool):
            raise ValueError(f"MLRConfig.antialias: expected true or false, found {self.antialias!r}")
        if any(isinstance(r, bool) or not isinstance(r, (int, np.integer)) for r in self.rates or ()):
            raise ValueError(f"MLRConfig.rates: expected integers (e.g. 2,3,4), found {list(self.rates)!r}")
        if not self.rates or any(int(r) < 1 for r in self.rates):
            raise ValueError(f"MLRConfig.rates: expected integers ≥ 1 (e.g. 2,3,4), found {self.rates!r}")
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(f"MLRConfig.interpolation: expected one of {INTERPOLATIONS}, found {self.interpolation!r}")
        if not self.antialias and self.interpolation == "lanczos":
            raise ValueError("MLRConfig: lanczos is only available with antialias=True")
        if self.num_splits is not None and self.num_splits < 1:
            raise ValueError(f"MLRConfig.num_splits: expected ≥ 1, found {self.num_splits}")


def load_rgb(path: str | os.PathLike) -> Image.Image:
    """Open an image as 8-bit RGB (:func:`to_rgb8`); an unreadable file raises :class:`ImageReadError` naming it.
    An image of an active decoded-image cache (:mod:`lib.data.image_cache`) comes from the cache: the same pixels."""
    cached = lookup(path)
    if cached is not None:
        return Image.fromarray(cached)
    if Path(path).is_dir():
        raise ImageReadError(f"{path} is a folder, not an image file")
    try:
        with Image.open(path) as im:
            im.load()
            return to_rgb8(im, path)
    except FileNotFoundError:
        raise ImageReadError(f"image file {path} does not exist") from None
    except ImageReadError:
        raise
    except Exception as e:  # PIL raises several types for corrupt files
        raise ImageReadError(f"cannot read image {path}: {e}") from None


#: 16-bit grayscale modes: scaled by 255/65535 (value / 257, rounded).
_MODES_16BIT = ("I;16", "I;16B", "I;16L", "I;16N")
#: Modes with no agreed value range (32-bit integers, floats): refused rather than guessed.
_MODES_AMBIGUOUS = ("I", "F")


def to_rgb8(img: Image.Image, path: str | os.PathLike | None = None) -> Image.Image:
    """``img`` as 8-bit RGB, high bit depths scaled rather than clipped.

    Pillow's ``convert("RGB")`` clips 16-bit grayscale (``I;16``, ``I;16B`` …) at 255, so a mid-grey 16-bit
    PNG would come out solid white: these are scaled to ``round(value / 257)`` (0..65535 → 0..255).
    16-bit-per-channel colour PNGs (RGB, RGBA, LA) are already reduced to 8 bits by Pillow's decoder, to the
    high byte (``value >> 8``, within 1 of ``value / 257``), and are converted as they come. 32-bit integer
    (``I``) and float (``F``) images have no agreed range (0..255? 0..65535? 0..1?): they raise
    :class:`ImageReadError` naming ``path`` and the mode. Other modes go through ``convert("RGB")``.
    """
    where = path if path is not None else "the image"
    if img.mode in _MODES_AMBIGUOUS:
        raise ImageReadError(
            f"cannot read image {where}: mode {img.mode!r} ({'32-bit integer' if img.mode == 'I' else '32-bit float'} "
            "pixels) has no agreed value range; save it as 8- or 16-bit PNG"
        )
    if img.mode in _MODES_16BIT:
        arr = np.asarray(img).astype(np.float64)
        img = Image.fromarray(np.rint(arr / 257.0).astype(np.uint8))
    try:
        return img.convert("RGB")
    except ValueError as e:  # a mode Pillow cannot convert (LAB, HSV …)
        raise ImageReadError(f"cannot read image {where}: mode {img.mode!r} cannot be converted to RGB ({e})") from None


def downsample(img: Image.Image, r: int, interpolation: str = "bicubic", antialias: bool = True) -> Image.Image:
    """Down-sample by rate ``r`` to the true size ``(max(1, round(H/r)), max(1, round(W/r)))``."""
    w, h = img.size
    size = (max(1, round(w / r)), max(1, round(h / r)))
    if antialias:
        return img.resize(size, _PIL_MODES[interpolation], reducing_gap=None)
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(np.asarray(img, dtype=np.float32)).permute(2, 0, 1)[None]
    kw = {} if interpolation == "nearest" else {"align_corners": False}
    y = F.interpolate(x, size=(size[1], size[0]), mode=interpolation, antialias=False, **kw)
    arr = y[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()
    return Image.fromarray(arr)


def _png_bytes(img: Image.Image) -> bytes:
    import io

    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()


def _lr_cameras(info: DatasetInfo, cfg: MLRConfig, camids: list[int]) -> list[int]:
    if cfg.lr_cameras is not None:
        unknown = sorted(set(cfg.lr_cameras) - set(camids))
        if unknown:
            raise ValueError(f"{info.name}: lr_cameras {unknown} not among the dataset's cameras {camids}")
        return sorted(set(cfg.lr_cameras))
    if info.lr_cameras == "fixed":
        return list(info.fixed_lr_cameras)
    if info.lr_cameras == "first_of_pair":
        return [c for c in camids if c % 2 == 0]
    rng = np.random.default_rng([cfg.seed, 101])
    return [int(rng.choice(camids))]


def _assign_rates(info: DatasetInfo, cfg: MLRConfig, records, to_down: list[int]) -> dict[int, int]:
    """Rate r for each index in ``to_down`` (per identity in equal thirds, or per image)."""
    rates = [int(r) for r in cfg.rates]
    if info.rate_per == "identity":
        pids = np.array(sorted({records[i].pid for i in to_down}), dtype=np.int64)
        perm = np.random.default_rng([cfg.seed, 102]).permutation(pids)
        by_pid = {}
        for rate, group in zip(rates, np.array_split(perm, len(rates))):
            by_pid.update({int(p): rate for p in group})
        return {i: by_pid[records[i].pid] for i in to_down}
    draws = np.random.default_rng([cfg.seed, 103]).choice(rates, size=len(to_down))
    return {i: int(r) for i, r in zip(to_down, draws)}


#: The datasets whose identity splits may come from a split file (``MLRConfig.split_file``).
SPLIT_FILE_DATASETS = ("cuhk03", "viper")


def _splits(info: DatasetInfo, cfg: MLRConfig, src: SourceDataset, records, is_lr_cam,
            split_file: SplitFile | None = None) -> tuple[list[dict], str]:
    """Train/query/gallery image indices per split, and a description of how they were made (``split_file``: VIPeR's
    identity splits read from ``cfg.split_file``).

    The records are checked first (:func:`_check_unique_paths`), and every split made, whatever the
    reader and split mode, is checked to have disjoint train and test identities (:func:`_check_disjoint`).
    """
    _check_unique_paths(info, src, records)
    subsets = {r.subset for r in records}
    idx = range(len(records))
    if info.split == "subset" and subsets & {"query", "gallery"}:
        train = [i for i in idx if records[i].subset == "train"]
        query = [i for i in idx if records[i].subset == "query" and is_lr_cam(i)]
        gallery = [i for i in idx if records[i].subset == "gallery"]
        fixed = [{"train": train, "query": query, "gallery": gallery}]
        _check_disjoint(info, src, records, fixed)
        return fixed, "fixed by the release (train/query/gallery)"
    if info.split == "subset" and "test" in subsets:
        train_ids = sorted({r.pid for r in records if r.subset == "train"})
        test_ids = sorted({r.pid for r in records if r.subset == "test"})
        id_splits, how = [(train_ids, test_ids)], "fixed by the release (train/test identities)"
    elif info.name == "cuhk03" and cfg.split_file:
        all_ids = sorted({r.pid for r in records})
        id_splits = [
            (sorted(set(all_ids) - set(t)), t) for t in read_cuhk03_split_file(cfg.split_file, src)
        ]
        how = f"test identities from {cfg.split_file}"
    elif split_file is not None:
        id_splits = split_file.splits
        how = (f"{len(id_splits)} identity splits from the torchreid split file {cfg.split_file} "
               f"({split_file.num_entries} entries; identical identity splits kept once)")
    else:
        pids = sorted({r.pid for r in records})
        n_train = cfg.num_train_ids or info.num_train_ids or int(round(len(pids) * info.train_fraction))
        n_test = cfg.num_test_ids or info.num_test_ids or len(pids) - n_train
        n_splits = cfg.num_splits or info.num_splits
        id_splits = random_identity_splits(pids, n_train, n_test, n_splits, cfg.seed)
        how = f"{n_splits} random {n_train}/{n_test} identity splits (numpy default_rng([seed, i]))"
    out = []
    for train_ids, test_ids in id_splits:
        tr, te = set(train_ids), set(test_ids)
        out.append(
            {
                "train": [i for i in idx if records[i].pid in tr],
                "query": [i for i in idx if records[i].pid in te and is_lr_cam(i)],
                "gallery": [i for i in idx if records[i].pid in te and not is_lr_cam(i)],
            }
        )
    _check_disjoint(info, src, records, out)
    return out, how


def _check_unique_paths(info: DatasetInfo, src: SourceDataset, records) -> None:
    """Raise if two records name the same image file (from any reader): it would be counted, and for the LR
    camera synthesised, twice. The error names the path and both records."""
    first: dict[str, int] = {}
    for i, r in enumerate(records):
        key = os.path.normpath(Path(src.root) / r.path)
        if key in first:
            a = records[first[key]]
            raise ValueError(
                f"{info.name}: image {r.path} is listed twice in {src.root} (records {first[key]} and {i}: "
                f"pid={a.pid} camid={a.camid} subset={a.subset} and pid={r.pid} camid={r.camid} subset={r.subset}); "
                "list each image once"
            )
        first[key] = i


def _check_disjoint(info: DatasetInfo, src: SourceDataset, records, splits: list[dict]) -> None:
    """Raise if a split has an identity in its training set and in its query or gallery, naming the split, the
    identity and a few of its images on each side (:func:`lib.data.splits.identity_overlap`)."""
    def side(s: dict, parts: list[str], train: bool) -> list[tuple[int, str]]:
        # the images the release itself puts on that side first (a train/test split by identity mixes them)
        idx = sorted((i for p in parts for i in s[p]), key=lambda i: (records[i].subset == "train") != train)
        return [(records[i].pid, records[i].path) for i in idx]

    for k, s in enumerate(splits):
        found = identity_overlap(side(s, ["train"], True), side(s, ["query", "gallery"], False), shown=3)
        if found:
            raise ValueError(f"{info.name}: split {k} of {src.root}: {found}; train and test identities must be disjoint")


def _read_split_file(info: DatasetInfo, cfg: MLRConfig, src: SourceDataset) -> SplitFile | None:
    """The split file ``cfg.split_file`` read for ``src`` (``None`` without one). CUHK03's is also read as it always
    was (:func:`~lib.data.readers.cuhk03.read_cuhk03_split_file`, by file name, in :func:`_splits`); reading it here too
    only records its hash, with no check beyond that (a file CUHK03 accepted before is still accepted)."""
    if not cfg.split_file:
        return None
    if info.name == "cuhk03":
        return split_file_summary(cfg.split_file, info.name)
    return read_torchreid_splits(cfg.split_file, src)


def build_mlr(
    root: str | os.PathLike,
    out_dir: str | os.PathLike,
    config: MLRConfig,
    *,
    force: bool = False,
    progress: bool = True,
) -> Path:
    """Build the MLR version of the dataset at ``root`` into ``out_dir``; return the manifest path
    (``out_dir/manifest.json``).

    An existing manifest made from the same configuration, source file list and source contents, with intact LR
    files, is reused (nothing is rewritten) unless ``force``. Otherwise a complete new build is written beside the
    current one and switched in atomically (:mod:`lib.data.mlr_store`): a job that loaded the dataset before keeps
    reading its own build's LR files, and a build that fails leaves the current one in place.
    """
    from tqdm.auto import tqdm

    from ..utils.progress import bars_off

    config.validate()
    info = get_dataset(config.dataset)
    if config.split_file and info.name not in SPLIT_FILE_DATASETS:
        raise ValueError(f"MLRConfig.split_file: only {' and '.join(SPLIT_FILE_DATASETS)} read a split file, found it "
                         f"set for {info.name!r}")
    if config.split_file and config.num_splits is not None:
        raise ValueError(f"MLRConfig.num_splits: {config.num_splits} random splits asked for, but the splits come from the "
                         f"split file {config.split_file}; leave num_splits unset (NUM_SPLITS 0)")
    if info.name == "cuhk03":
        src = info.read(root, variant=config.cuhk03_variant)
    else:
        src = info.read(root)
    out_dir = Path(out_dir)
    records = list(src.records)
    file_list_sha = sha256_bytes("\n".join(sorted(r.path for r in records)).encode())

    dropped: list[int] = []
    if info.two_camera_only:
        keep = set(two_camera_identities(src))
        dropped = sorted(set(src.pids) - keep)
        records = [r for r in records if r.pid in keep]

    camids = sorted({r.camid for r in records})
    lr_cams = _lr_cameras(info, config, camids)
    is_lr_cam = lambda i: records[i].camid in lr_cams  # noqa: E731

    cfg_dict = asdict(config) | {"dataset": info.name, "rates": [int(r) for r in config.rates]}
    if config.lr_cameras is not None:
        cfg_dict["lr_cameras"] = sorted(config.lr_cameras)

    # Everything that can fail on the options is decided before the output folder is touched.
    to_down = [] if info.native_lr else [i for i, r in enumerate(records) if is_lr_cam(i) and r.subset != "gallery"]
    rates = _assign_rates(info, config, records, to_down)
    split_file = _read_split_file(info, config, src)
    splits, how = _splits(info, config, src, records, is_lr_cam,
                          split_file if info.name != "cuhk03" else None)
    for k, s in enumerate(splits):
        for part in ("train", "query", "gallery"):
            if not s[part]:
                raise ValueError(f"{info.name}: split {k} has an empty {part} set (LR cameras {lr_cams}); check the data")
    lr_names = lr_file_names([r.path for r in records], to_down)

    # Every source image is hashed, so a source whose content changed under the same name is noticed ...
    source_sha, high_bit = {}, 0
    for i, r in enumerate(tqdm(records, desc=f"hash {info.name}", disable=bars_off(progress), mininterval=1.0)):
        path = Path(src.root) / r.path
        try:
            data = path.read_bytes()
        except OSError as e:
            raise ImageReadError(f"cannot read image {path}: {e}") from None
        source_sha[i] = sha256_bytes(data)
        high_bit += _is_png16(data)
    head = {"high_bit_depth": HIGH_BIT_DEPTH} if high_bit else {}  # only then: 8-bit manifests stay as they were
    if split_file is not None:  # where the splits came from (provenance: not part of the fingerprint, mlr_store)
        head["split_file"] = split_file.record()

    manifest_path = out_dir / MANIFEST_NAME
    shas = [source_sha[i] for i in range(len(records))]
    reusable = lambda: (manifest_path.is_file() and not force  # noqa: E731
                        and _reusable(manifest_path.resolve(), cfg_dict, file_list_sha, shas, head))
    if reusable():  # without taking the lock: a folder someone else built (read-only to us) is reused as it is
        return manifest_path
    check_legacy(out_dir)  # an old-layout folder held by a running job: say so before synthesising anything
    with build_lock(out_dir, progress):  # one builder per folder; readers keep the build they opened (mlr_store)
        if reusable():  # another builder made it while we waited
            return manifest_path
        # A new build goes into a staging folder and is switched in only when complete: an interrupted or failed
        # rebuild leaves the current build as it was, and a running job never sees its LR files change.
        stage = staging_dir(out_dir)
        try:
            manifest = _write_build(stage, info, config, src, records, source_sha, rates, to_down, lr_names, {
                "format": MANIFEST_FORMAT, "dataset": info.name, "config": cfg_dict, "file_list_sha256": file_list_sha,
                "lr_cameras": lr_cams, "dropped_identities": dropped, "split_method": how, "splits": splits, **head,
            }, is_lr_cam, progress)
            return publish(out_dir, stage, manifest, replace=force)
        finally:
            if stage.exists():  # failed before publishing (publish renames or removes it)
                shutil.rmtree(stage, ignore_errors=True)


def _write_build(stage: Path, info: DatasetInfo, config: MLRConfig, src: SourceDataset, records, source_sha, rates,
                 to_down, lr_names, head: dict, is_lr_cam, progress: bool) -> dict:
    """Decode every source (a truncated HR image fails here, naming the file, not in training), write the LR
    images into ``stage`` and the manifest last; returns the manifest."""
    from tqdm.auto import tqdm

    from ..utils.progress import bars_off

    decoded = {}
    for i, r in enumerate(tqdm(records, desc=f"verify {info.name}", disable=bars_off(progress), mininterval=1.0)):
        img = load_rgb(Path(src.root) / r.path)
        if i in rates:
            decoded[i] = img  # down-sampled below without reading it again

    images = []
    for i, r in enumerate(records):
        images.append(
            {
                "source": r.path,
                "source_sha256": source_sha[i],
                "pid": r.pid,
                "camid": r.camid,
                "subset": r.subset,
                "res": "lr" if (is_lr_cam(i) and r.subset != "gallery") else "hr",
                "r": rates.get(i),
                "lr": None,
                "lr_size": None,
            }
        )
    for i in tqdm(to_down, desc=f"MLR {info.name}", disable=bars_off(progress), mininterval=1.0):
        im = images[i]
        lr = downsample(decoded.pop(i), im["r"], config.interpolation, config.antialias)
        rel = lr_names[i]
        data = _png_bytes(lr)
        atomic_write_bytes(stage / rel, data)
        im["lr"] = rel
        im["lr_size"] = [lr.height, lr.width]
        im["lr_sha256"] = sha256_bytes(data)

    rate_counts = {str(r): int(sum(1 for i in to_down if rates[i] == r)) for r in sorted(set(rates.values()))}
    manifest = {
        "format": head["format"],
        "dataset": info.name,
        "config": head["config"],
        "source": {
            "root": str(Path(src.root).resolve()),
            "layout": src.layout,
            "num_images": src.num_images,
            "num_identities": len(src.pids),
            "file_list_sha256": head["file_list_sha256"],
        },
        "eval_protocol": info.eval_protocol,
        "lr_cameras": head["lr_cameras"],
        "native_lr": info.native_lr,
        "rate_per": info.rate_per,
        "rate_counts": rate_counts,
        "dropped_identities": head["dropped_identities"],
        "num_images": len(images),
        "num_identities": len({r.pid for r in records}),
        "split_method": head["split_method"],
        "images": images,
        "splits": head["splits"],
        **{k: head[k] for k in ("high_bit_depth", "split_file") if k in head},
    }
    atomic_write_json(stage / MANIFEST_NAME, manifest, indent=1)
    return manifest


def lr_file_names(sources: Sequence[str], indices: Sequence[int]) -> dict[int, str]:
    """Where each synthesised LR image goes, relative to the output folder: always under ``lr/``.

    ``lr/<source path>.png`` with the source's suffix replaced; an absolute source path goes under
    ``lr/_abs/…`` and every ``..`` becomes ``__up__``, so nothing is ever written outside the output folder
    (a CSV manifest may point anywhere). Sources that would share a name (``x.png`` and ``x.jpg``) keep
    their suffix instead (``x.png.png``, ``x.jpg.png``), so none overwrites another.
    """
    def parts(src: str) -> list[str]:
        p = Path(src)
        out = [("__up__" if q == ".." else q) for q in p.parts if q not in (p.anchor, ".")]
        return (["_abs"] if p.is_absolute() else []) + out

    plain = {i: Path("lr", *parts(sources[i])).with_suffix(".png").as_posix() for i in indices}
    count: dict[str, int] = {}
    for name in plain.values():
        count[name] = count.get(name, 0) + 1
    names = {}
    for i, name in plain.items():
        if count[name] > 1:
            q = parts(sources[i])
            name = Path("lr", *q[:-1], q[-1] + ".png").as_posix()
        names[i] = name
    if len(set(names.values())) != len(names):
        dup = sorted(n for n in set(names.values()) if list(names.values()).count(n) > 1)
        raise ValueError(f"MLR synthesis: several source images map to the LR file(s) {dup[:5]}; rename the sources")
    return names


def _reusable(manifest_path: Path, cfg_dict: dict, file_list_sha: str, source_sha: list[str], head: dict) -> bool:
    """Whether the manifest in the output folder describes exactly this build, with intact LR files (``head``: the
    manifest keys this build adds, e.g. ``high_bit_depth`` — a build of 16-bit sources made before they were scaled
    lacks it, and its clipped LR images are not reused).

    A malformed or older manifest is not reusable (the folder is rebuilt), never an error.
    """
    try:
        old = json.loads(manifest_path.read_text())
        if not isinstance(old, dict) or old.get("config") != cfg_dict:
            return False
        if old.get("source", {}).get("file_list_sha256") != file_list_sha:
            return False
        if any(old.get(k) != v for k, v in head.items()):
            return False
        images = old["images"]
        if len(images) != len(source_sha) or [im.get("source_sha256") for im in images] != source_sha:
            return False
        if not all(im.get("lr_sha256") for im in images if im.get("lr")):
            return False
        return lr_mismatch(manifest_path.parent, images) is None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


#: What a manifest built from 16-bit sources records: how they were brought to 8 bits (:func:`to_rgb8`).
HIGH_BIT_DEPTH = "16-bit sources scaled to 8 bits (round(v / 257))"
_PNG = b"\x89PNG\r\n\x1a\n"


def _is_png16(data: bytes) -> bool:
    """A PNG with 16 bits per sample (its IHDR's bit depth, byte 24)."""
    return len(data) > 24 and data[:8] == _PNG and data[12:16] == b"IHDR" and data[24] == 16


def _int_tuple(s: str) -> tuple[int, ...]:
    return tuple(int(x) for x in s.replace(" ", "").split(",") if x)


def _cli_root(dataset: str, root: str, split_file: str | None, variant: str) -> tuple[str, str | None]:
    """The command line's ROOT as the dataset's folder (:func:`lib.data.locations.dataset_folder`: ROOT itself or the
    folder under it that its reader reads) and ``--split-file`` (``torchreid``: the file torchreid keeps beside it). A
    ROOT that holds no such folder is left as it is, with a note naming the folders tried: the build then reports
    what the reader expected of it."""
    from .locations import DatasetNotFoundError, dataset_folder
    from .readers.torchreid_splits import torchreid_split_file

    info = get_dataset(dataset)
    if info.folders:
        try:
            root = str(dataset_folder(info.name, root))
        except DatasetNotFoundError as e:
            print(f"note: {str(e).removeprefix('DATA_ROOT: ')}", file=sys.stderr)
    if split_file == "torchreid":
        split_file = str(torchreid_split_file(info.name, root, variant))
    return root, split_file


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m lib.mlr DATASET ROOT OUT [options]``: build an MLR dataset and print its summary."""
    p = argparse.ArgumentParser(prog="python -m lib.mlr", description=__doc__.split("\n\n")[0])
    p.add_argument("dataset", help="viper | caviar | cuhk03 | market1501 | dukemtmc | csv | synthetic")
    p.add_argument("root", help="dataset root in its original release layout, or a folder holding it (torchreid's and "
                   "fast-reid's layouts too: lib.data.locations); csv: the manifest file")
    p.add_argument("out", help="output folder for lr/ and manifest.json")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rates", type=_int_tuple, default=(2, 3, 4), help="comma-separated, default 2,3,4")
    p.add_argument("--interpolation", choices=INTERPOLATIONS, default="bicubic")
    p.add_argument("--no-antialias", action="store_true", help="down-sample without low-pass filtering")
    p.add_argument("--num-splits", type=int, default=None)
    p.add_argument("--lr-cameras", type=_int_tuple, default=None, help="override the LR camera ids (0-based)")
    p.add_argument("--split-file", default=None, help="identity splits from a torchreid split file: VIPeR's splits.json, "
                   "CUHK03's splits_classic_*.json; 'torchreid': the one torchreid keeps beside the dataset")
    p.add_argument("--cuhk03-variant", choices=("labeled", "detected"), default="labeled")
    p.add_argument("--num-train-ids", type=int, default=None, help="override the protocol's train identities")
    p.add_argument("--num-test-ids", type=int, default=None, help="override the protocol's test identities")
    p.add_argument("--force", action="store_true", help="rebuild even if an identical manifest exists")
    p.add_argument("--quiet", action="store_true")
    a = p.parse_args(argv)
    try:
        root, split_file = _cli_root(a.dataset, a.root, a.split_file, a.cuhk03_variant)
        cfg = MLRConfig(
            a.dataset, a.seed, a.rates, a.interpolation, not a.no_antialias, a.num_splits, a.lr_cameras, split_file,
            a.cuhk03_variant, a.num_train_ids, a.num_test_ids,
        )
        path = build_mlr(root, a.out, cfg, force=a.force, progress=not a.quiet)
    except (ValueError, KeyError, OSError, MLRBuildError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from .mlr_dataset import MLRDataset

    ds = MLRDataset.load(path)
    print(json.dumps(ds.summary(), indent=1))
    return 0
