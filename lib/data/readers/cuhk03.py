"""CUHK03 in the widely used extracted layout (as torchreid writes it from ``cuhk-03.mat``).

Layout::

    ROOT/images_labeled/C_PPP_V_II.png     C = camera pair 1..5, PPP = person in that pair,
    ROOT/images_detected/C_PPP_V_II.png    V = view 1|2 (camera within the pair), II = image index
    ROOT/splits_classic_labeled.json       optional: torchreid's classic 1367/100 splits (lib.data.readers.torchreid_splits)

Identities are numbered ``C * 1000 + PPP`` (unique across pairs); camera ids are ``2 * (C - 1) + (V - 1)``,
so the first camera of each pair has an even id.
"""

from __future__ import annotations

import os
import re

from ..records import ImageRecord, SourceDataset
from ._common import layout_error, list_images, require_root
from .torchreid_splits import read_test_identities

__all__ = ["read_cuhk03", "read_cuhk03_split_file", "CUHK03_LAYOUT"]

CUHK03_LAYOUT = "images_labeled/ or images_detected/ holding C_PPP_V_II.png images (as extracted by torchreid)"
_NAME = re.compile(r"^(\d)_(\d{3})_([12])_(\d{2})\.\w+$")


def read_cuhk03(root: str | os.PathLike, *, variant: str = "labeled") -> SourceDataset:
    """Read CUHK03 ``images_labeled/`` (``variant='labeled'``) or ``images_detected/``."""
    name = "cuhk03"
    if variant not in ("labeled", "detected"):
        raise ValueError(f"cuhk03: variant must be 'labeled' or 'detected', got {variant!r}")
    root = require_root(name, root, CUHK03_LAYOUT)
    folder = f"images_{variant}"
    if not (root / folder).is_dir():
        found = ", ".join(sorted(p.name + "/" for p in root.iterdir() if p.is_dir())) or "no sub-folders"
        raise layout_error(name, root, f"{folder}/ ({CUHK03_LAYOUT})", found)
    files = list_images(root / folder)
    if not files:
        raise layout_error(name, root, CUHK03_LAYOUT, f"no images in {folder}/")
    records = []
    for p in files:
        m = _NAME.match(p.name)
        if m is None:
            raise layout_error(name, root, "file names like 1_001_1_01.png", f"{folder}/{p.name}")
        pair, person, view = int(m.group(1)), int(m.group(2)), int(m.group(3))
        records.append(ImageRecord(f"{folder}/{p.name}", pair * 1000 + person, 2 * (pair - 1) + (view - 1)))
    return SourceDataset(name, root, records, layout=CUHK03_LAYOUT, extra={"variant": variant})


def read_cuhk03_split_file(path: str | os.PathLike, ds: SourceDataset) -> list[list[int]]:
    """Test identities of each split in a torchreid-style ``splits_classic_*.json`` (or ``splits_new_*.json``).

    The file is a list of splits, each with ``query`` and ``gallery`` lists of ``[img_path, pid, camid]``;
    images are matched to ``ds`` by file name. Returns, per split, the sorted test person ids (in ``ds``'s
    numbering); the remaining identities are the training identities
    (:func:`lib.data.readers.torchreid_splits.read_test_identities`).
    """
    return read_test_identities(path, ds)
