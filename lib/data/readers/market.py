"""Market-1501 and DukeMTMC-reID in their original release layouts.

Layout::

    ROOT/bounding_box_train/PPPP_cC....jpg
    ROOT/bounding_box_test/PPPP_cC....jpg
    ROOT/query/PPPP_cC....jpg

Market-1501 names are ``PPPP_cCsS_FFFFFF_NN.jpg``, DukeMTMC-reID names ``PPPP_cC_fFFFFFFF.jpg``; both are
parsed by the leading ``PPPP_cC``. Person id ``-1`` marks junk detections (Market's gallery): they are
dropped, as in torchreid. Person id ``0000`` (Market's distractors) is kept in the gallery.
Cameras are numbered from 1 in file names and from 0 here.
"""

from __future__ import annotations

import os
import re

from ..records import ImageRecord, SourceDataset
from ._common import layout_error, list_images, require_dirs, require_root

__all__ = ["read_market1501", "read_dukemtmc", "MARKET_LAYOUT"]

MARKET_LAYOUT = "bounding_box_train/, bounding_box_test/ and query/ holding PPPP_cC*.jpg images"
_NAME = re.compile(r"^(-?\d+)_c(\d+)")
_SUBSETS = (("bounding_box_train", "train"), ("query", "query"), ("bounding_box_test", "gallery"))


def _read(name: str, root: str | os.PathLike, num_cameras: int) -> SourceDataset:
    root = require_root(name, root, MARKET_LAYOUT)
    require_dirs(name, root, [d for d, _ in _SUBSETS], MARKET_LAYOUT)
    records: list[ImageRecord] = []
    junk = 0
    for folder, subset in _SUBSETS:
        files = list_images(root / folder)
        if not files:
            raise layout_error(name, root, MARKET_LAYOUT, f"no images in {folder}/")
        for p in files:
            m = _NAME.match(p.name)
            if m is None:
                raise layout_error(name, root, f"file names like 0002_c1s1_000451_03.jpg in {folder}/", f"{folder}/{p.name}")
            pid, cam = int(m.group(1)), int(m.group(2))
            if pid == -1:
                junk += 1
                continue
            if not 1 <= cam <= num_cameras:
                raise layout_error(name, root, f"camera 1..{num_cameras} in file names", f"c{cam} in {folder}/{p.name}")
            records.append(ImageRecord(f"{folder}/{p.name}", pid, cam - 1, subset))
    return SourceDataset(name, root, records, layout=MARKET_LAYOUT, extra={"junk_dropped": junk})


def read_market1501(root: str | os.PathLike) -> SourceDataset:
    """Read Market-1501 (6 cameras)."""
    return _read("market1501", root, num_cameras=6)


def read_dukemtmc(root: str | os.PathLike) -> SourceDataset:
    """Read DukeMTMC-reID (8 cameras)."""
    return _read("dukemtmc", root, num_cameras=8)
