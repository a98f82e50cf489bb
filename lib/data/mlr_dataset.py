"""Load an MLR dataset from its manifest and hand out splits (query = LR, gallery = HR)."""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from .mlr_build import MANIFEST_FORMAT, MANIFEST_NAME
from .mlr_store import lr_mismatch, manifest_fingerprint, open_manifest
from .splits import identity_overlap

__all__ = ["MLRImage", "Split", "MLRDataset", "MLRDataError"]


@dataclass(frozen=True)
class MLRImage:
    """One image of an MLR dataset.

    Attributes:
        index: position in the manifest's image list.
        hr_path: the original (high-resolution) image.
        lr_path: the synthesised low-resolution image, if any.
        pid, camid: identity and camera (dataset numbering).
        res: ``'lr'`` or ``'hr'``: the image's resolution in the MLR dataset (CAVIAR's camera 2 is ``'lr'``
            natively, with ``lr_path`` ``None``).
        r: the down-sampling rate (``None`` when not synthesised).
    """

    index: int
    hr_path: Path
    lr_path: Path | None
    pid: int
    camid: int
    res: str
    r: int | None

    @property
    def path(self) -> Path:
        """The image as it is in the MLR dataset: the LR file when synthesised, else the original."""
        return self.lr_path if self.lr_path is not None else self.hr_path

    @property
    def has_hr_original(self) -> bool:
        """Whether an HR version of this exact image exists (false for natively LR images)."""
        return self.res == "hr" or self.lr_path is not None


@dataclass(frozen=True)
class Split:
    """Train / query (LR) / gallery (HR) images of one identity split."""

    index: int
    train: list[MLRImage]
    query: list[MLRImage]
    gallery: list[MLRImage]

    @property
    def num_train_ids(self) -> int:
        return len({im.pid for im in self.train})

    def summary(self) -> dict:
        return {
            "split": self.index,
            "train_images": len(self.train),
            "train_ids": self.num_train_ids,
            "query_images": len(self.query),
            "query_ids": len({im.pid for im in self.query}),
            "gallery_images": len(self.gallery),
            "gallery_ids": len({im.pid for im in self.gallery}),
        }


_REBUILD = "rebuild it (notebook 01, or python -m lib.mlr DATASET ROOT OUT --force)"


def _check_manifest(manifest, path) -> None:
    """A clear error for a manifest that is not what :func:`lib.data.mlr_build.build_mlr` writes (edited, cut, foreign)."""
    def bad(what: str) -> ValueError:
        return ValueError(f"MLR manifest {path} is malformed: {what}; {_REBUILD}")

    if not isinstance(manifest, dict):
        raise bad(f"expected a JSON object, found {type(manifest).__name__}")
    if not isinstance(manifest.get("source", {}), dict) or not isinstance(manifest.get("config", {}), dict):
        raise bad("'source' and 'config' must be objects")
    images, splits = manifest.get("images"), manifest.get("splits")
    if not isinstance(images, list) or not images:
        raise bad("'images' must be a non-empty list")
    if manifest.get("num_images") is not None and manifest["num_images"] != len(images):
        raise bad(f"it announces {manifest['num_images']} images but lists {len(images)} (cut short?)")
    if not isinstance(splits, list) or not splits:
        raise bad("'splits' must be a non-empty list")
    for k, sp in enumerate(splits):
        if not isinstance(sp, dict):
            raise bad(f"split {k} is not an object")
        for part in ("train", "query", "gallery"):
            idx = sp.get(part)
            if not isinstance(idx, list) or not idx:
                raise bad(f"split {k} has no '{part}' image list")
            out = [i for i in idx if not isinstance(i, int) or not 0 <= i < len(images)]
            if out:
                raise bad(f"split {k} '{part}' names image indices {out[:5]} outside 0..{len(images) - 1}")
        # Train and test identities must be disjoint: a hand-edited split could test on identities it trains on.
        side = lambda parts: [(images[i].get("pid"), f"image {i}") for p in parts for i in sp[p]  # noqa: E731
                              if isinstance(images[i], dict)]
        found = identity_overlap(side(["train"]), side(["query", "gallery"]))
        if found:
            raise bad(f"split {k}: {found}; train and test identities must be disjoint")


class MLRDataError(ValueError):
    """A file of an MLR dataset differs from what its manifest records (the message names the file)."""


class MLRDataset:
    """An MLR dataset as described by its ``manifest.json`` (see :func:`lib.data.mlr_build.build_mlr`).

    ``manifest_path`` is the path it was loaded from (``OUT/manifest.json``, recorded by runs); ``root`` is the build
    folder that path pointed at when it was loaded (:mod:`lib.data.mlr_store`): every LR path lies there, and a
    dataset loaded with :meth:`load` keeps that build from being collected while it lives, so a rebuild of ``OUT``
    never changes the images under it. :meth:`verify_split` checks the LR files against the manifest's hashes.
    """

    def __init__(self, manifest: dict, manifest_path: Path, source_root: str | os.PathLike | None = None,
                 root: str | os.PathLike | None = None):
        _check_manifest(manifest, manifest_path)
        if manifest.get("format") != MANIFEST_FORMAT:
            raise ValueError(f"{manifest_path}: expected format {MANIFEST_FORMAT!r}, found {manifest.get('format')!r}; {_REBUILD}")
        missing = [k for k in ("dataset", "config", "source", "eval_protocol", "images", "splits") if k not in manifest]
        if missing:
            raise ValueError(f"{manifest_path}: not a complete MLR manifest, missing keys {missing}; {_REBUILD}")
        self.manifest = manifest
        self.manifest_path = Path(manifest_path)
        self.root = Path(root) if root is not None else self.manifest_path.resolve().parent
        self._hold = None  # the open manifest whose shared lock keeps this build on disk (set by load)
        self._verified: set[int] = set()
        self.source_root = Path(source_root) if source_root else Path(manifest["source"]["root"])
        if not self.source_root.is_dir():
            raise FileNotFoundError(
                f"{manifest_path}: the source dataset folder {self.source_root} does not exist "
                "(moved? pass source_root=... to MLRDataset.load)"
            )
        try:
            self.images = self._images(manifest)
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{manifest_path}: malformed image entry in the manifest ({type(e).__name__}: {e}); {_REBUILD}") from None
        self.fingerprint = manifest_fingerprint(manifest)  # the dataset's identity wherever it is stored

    def _images(self, manifest: dict) -> list[MLRImage]:
        return [
            MLRImage(
                index=i,
                hr_path=self.source_root / im["source"],
                lr_path=(self.root / im["lr"]) if im.get("lr") else None,
                pid=int(im["pid"]),
                camid=int(im["camid"]),
                res=im["res"],
                r=im.get("r"),
            )
            for i, im in enumerate(manifest["images"])
        ]

    def close(self) -> None:
        """Release the build (a later rebuild of the folder may then collect it); the object stays readable in memory
        but its LR files may go."""
        if self._hold is not None:
            self._hold.close()
            self._hold = None

    def __getstate__(self) -> dict:  # a copy (DataLoader workers, deepcopy) holds no lock: it checks its files anew
        return self.__dict__ | {"_hold": None, "_verified": set()}

    def verify_split(self, i: int) -> int:
        """Check every synthesised LR file of split ``i`` (train, query, gallery) against the ``lr_sha256`` its
        manifest records, once per image and dataset object; returns the number of files hashed now.

        Runs call it before they train, evaluate or are reused (:func:`lib.core.runs.run_stage`), so a result is never
        computed on, or vouched for by, LR images other than those its recorded manifest names.

        Raises:
            MLRDataError: a file is missing or differs, naming it, its expected and found sha256.
        """
        todo = [j for j in dict.fromkeys(self.manifest["splits"][i]["train"] + self.manifest["splits"][i]["query"]
                                         + self.manifest["splits"][i]["gallery"]) if j not in self._verified]
        entries = self.manifest["images"]
        unhashed = [j for j in todo if entries[j].get("lr") and not entries[j].get("lr_sha256")]
        if unhashed:
            from ..utils.progress import report

            report(f"note: {self.manifest_path} records no LR file hashes (made by an early version of the workbook), "
                   f"so {len(unhashed)} LR files of split {i} cannot be checked; rebuild it with --force to have them "
                   "checked (its runs then retrain)")
        bad = lr_mismatch(self.root, entries, todo)
        if bad is not None:
            path, want, found = bad
            what = f"is {found}" if found == "missing" or found.startswith("unreadable") else f"differs (sha256 {found[:12]}…)"
            raise MLRDataError(
                f"{path}: this LR image of {self.manifest_path} {what}, and the manifest records sha256 {want[:12]}…: "
                f"it changed after the dataset was built, so results computed on it would not be what the manifest "
                f"says; {_REBUILD}")
        self._verified.update(todo)
        return sum(1 for j in todo if entries[j].get("lr") and entries[j].get("lr_sha256"))

    def provenance(self) -> dict:
        """What a result was computed on: dataset, manifest (path and content hash), sources, MLR seed."""
        return {
            "dataset": self.name,
            "manifest": str(self.manifest_path),
            "manifest_sha256": self.fingerprint,
            "file_list_sha256": self.manifest["source"]["file_list_sha256"],
            "mlr_seed": self.seed,
        }

    @classmethod
    def load(cls, path: str | os.PathLike, *, source_root: str | os.PathLike | None = None) -> MLRDataset:
        """Load from a manifest file or the folder holding ``manifest.json``."""
        path = Path(path)
        if path.is_dir():
            path = path / MANIFEST_NAME
        if not path.is_file():
            raise FileNotFoundError(f"MLR manifest {path} does not exist (build it with python -m lib.mlr)")
        build, text, hold = open_manifest(path)  # the build `path` points at now, kept on disk while we hold it
        try:
            manifest = json.loads(text)
        except json.JSONDecodeError as e:
            hold.close()
            raise ValueError(f"MLR manifest {path} is not valid JSON ({e}); {_REBUILD}") from None
        try:
            ds = cls(manifest, path, source_root, root=build)
        except BaseException:
            hold.close()
            raise
        ds._hold = hold
        return ds

    @property
    def name(self) -> str:
        return self.manifest["dataset"]

    @property
    def eval_protocol(self) -> str:
        return self.manifest["eval_protocol"]

    @property
    def num_splits(self) -> int:
        return len(self.manifest["splits"])

    @property
    def seed(self) -> int:
        return int(self.manifest["config"]["seed"])

    def split(self, i: int = 0) -> Split:
        """The ``i``-th identity split."""
        if not 0 <= i < self.num_splits:
            raise IndexError(f"{self.manifest_path}: split {i} requested, the dataset has {self.num_splits} split(s)")
        s = self.manifest["splits"][i]
        return Split(i, *[[self.images[j] for j in s[k]] for k in ("train", "query", "gallery")])

    def rate_histogram(self) -> dict[int, int]:
        """Number of synthesised LR images per rate r."""
        return dict(sorted(Counter(im.r for im in self.images if im.r is not None).items()))

    def summary(self) -> dict:
        m = self.manifest
        return {
            "dataset": self.name,
            "manifest": str(self.manifest_path),
            "num_images": m["num_images"],
            "num_identities": m["num_identities"],
            "lr_cameras": m["lr_cameras"],
            "native_lr": m["native_lr"],
            "lr_images": sum(1 for im in self.images if im.res == "lr"),
            "rates": {str(k): v for k, v in self.rate_histogram().items()},
            "eval_protocol": self.eval_protocol,
            "num_splits": self.num_splits,
            "split_method": m["split_method"],
            "split0": self.split(0).summary(),
            "seed": self.seed,
            "file_list_sha256": m["source"]["file_list_sha256"],
        }
