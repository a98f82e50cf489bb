"""CAVIAR4REID (Cheng et al., BMVC 2011) as its release (and the PETA re-distribution) unpacks.

Layout::

    ROOT/CAVIARa/PPPPIII.jpg    PPPP = person id, III = 001..020

Images 001–010 come from camera 1 (camera 0 here), 011–020 from camera 2 (camera 1 here). 72 identities,
1220 images; 50 identities are seen by both cameras. Camera 2 is genuinely low-resolution: nothing is
synthesised for this dataset. A root that directly holds the ``PPPPIII.jpg`` files is accepted too.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..records import ImageRecord, SourceDataset
from ._common import layout_error, list_images, require_root

__all__ = ["read_caviar", "CAVIAR_LAYOUT", "two_camera_identities"]

CAVIAR_LAYOUT = "CAVIARa/ holding PPPPIII.jpg images (III = 001..010 camera 1, 011..020 camera 2)"
_NAME = re.compile(r"^(\d{4})(\d{3})\.\w+$")


def read_caviar(root: str | os.PathLike) -> SourceDataset:
    """Read CAVIAR4REID; all 72 identities are returned (see :func:`two_camera_identities`)."""
    name = "caviar"
    root = require_root(name, root, CAVIAR_LAYOUT)
    folder: Path = root / "CAVIARa" if (root / "CAVIARa").is_dir() else root
    files = list_images(folder)
    if not files:
        raise layout_error(name, root, CAVIAR_LAYOUT, "no images in CAVIARa/ nor directly in the folder")
    prefix = "CAVIARa/" if folder != root else ""
    records: list[ImageRecord] = []
    for p in files:
        m = _NAME.match(p.name)
        if m is None:
            raise layout_error(name, root, "file names like 0001001.jpg", f"{prefix}{p.name}")
        pid, idx = int(m.group(1)), int(m.group(2))
        if not 1 <= idx <= 20:
            raise layout_error(name, root, "image index 001..020", f"{prefix}{p.name}")
        records.append(ImageRecord(f"{prefix}{p.name}", pid, 0 if idx <= 10 else 1))
    return SourceDataset(name, root, records, layout=CAVIAR_LAYOUT)


def two_camera_identities(ds: SourceDataset) -> list[int]:
    """Sorted person ids seen by both cameras (the 50 used for evaluation)."""
    return sorted(pid for pid, cams in ds.cameras_per_identity().items() if len(cams) >= 2)
