"""The one in-memory form every dataset reader produces.

A reader turns a dataset's original release layout into a :class:`SourceDataset`: a flat list of
:class:`ImageRecord` (path relative to the dataset root, person id, camera id, and — for datasets that
ship a fixed protocol such as Market-1501 — the subset the image belongs to).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["ImageRecord", "SourceDataset", "DatasetLayoutError", "ImageReadError", "IMAGE_SUFFIXES"]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


class DatasetLayoutError(ValueError):
    """A dataset root does not match the layout its reader expects."""


class ImageReadError(OSError):
    """An image file could not be decoded."""


@dataclass(frozen=True)
class ImageRecord:
    """One image of a source dataset.

    Attributes:
        path: POSIX path relative to the dataset root.
        pid: person identity (dataset-specific integer, not relabelled).
        camid: camera index, 0-based.
        subset: ``'train'``, ``'query'`` or ``'gallery'`` where the release fixes the protocol
            (Market-1501, DukeMTMC-reID, a CSV manifest with such a column), ``'test'`` for an identity
            split without a query/gallery division, else ``None`` (splits are drawn at random).
    """

    path: str
    pid: int
    camid: int
    subset: str | None = None


@dataclass
class SourceDataset:
    """All images of one dataset as its release lays them out."""

    name: str
    root: Path
    records: list[ImageRecord]
    layout: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def pids(self) -> list[int]:
        """Sorted unique person ids."""
        return sorted({r.pid for r in self.records})

    @property
    def camids(self) -> list[int]:
        """Sorted unique camera ids."""
        return sorted({r.camid for r in self.records})

    @property
    def num_images(self) -> int:
        return len(self.records)

    def cameras_per_identity(self) -> dict[int, set[int]]:
        """Map pid → set of cameras that saw it."""
        out: dict[int, set[int]] = {}
        for r in self.records:
            out.setdefault(r.pid, set()).add(r.camid)
        return out

    def summary(self) -> dict:
        """Counts for a quick look (images, identities, cameras, images per subset)."""
        return {
            "name": self.name,
            "root": str(self.root),
            "num_images": self.num_images,
            "num_identities": len(self.pids),
            "num_cameras": len(self.camids),
            "subsets": dict(sorted(Counter(r.subset or "-" for r in self.records).items())),
        }
