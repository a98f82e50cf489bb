"""VIPeR (Gray, Brennan & Tao, PETS 2007) as ``VIPeR.v1.0.zip`` unpacks.

Layout::

    ROOT/cam_a/NNN_AAA.bmp    NNN = person id, AAA = viewpoint angle
    ROOT/cam_b/NNN_AAA.bmp

632 identities, one image per camera each. cam_a is camera 0, cam_b camera 1.
"""

from __future__ import annotations

import os
import re

from ..records import ImageRecord, SourceDataset
from ._common import layout_error, list_images, require_dirs, require_root

__all__ = ["read_viper", "VIPER_LAYOUT"]

VIPER_LAYOUT = "cam_a/ and cam_b/ holding NNN_AAA.bmp images (NNN = person id), one per person and camera"
_NAME = re.compile(r"^(\d+)_(\d+)\.\w+$")


def read_viper(root: str | os.PathLike) -> SourceDataset:
    """Read VIPeR; every identity must appear once in each camera."""
    name = "viper"
    root = require_root(name, root, VIPER_LAYOUT)
    require_dirs(name, root, ["cam_a", "cam_b"], VIPER_LAYOUT)
    records: list[ImageRecord] = []
    per_cam: list[set[int]] = []
    for camid, folder in enumerate(("cam_a", "cam_b")):
        seen: set[int] = set()
        files = list_images(root / folder)
        if not files:
            raise layout_error(name, root, VIPER_LAYOUT, f"no images in {folder}/")
        for p in files:
            m = _NAME.match(p.name)
            if m is None:
                raise layout_error(name, root, "file names like 000_45.bmp", f"{folder}/{p.name}")
            pid = int(m.group(1))
            if pid in seen:
                raise layout_error(name, root, "one image per person in each camera", f"two images of person {pid} in {folder}/")
            seen.add(pid)
            records.append(ImageRecord(f"{folder}/{p.name}", pid, camid))
        per_cam.append(seen)
    if per_cam[0] != per_cam[1]:
        only_a = sorted(per_cam[0] - per_cam[1])[:5]
        only_b = sorted(per_cam[1] - per_cam[0])[:5]
        raise layout_error(
            name, root, "the same person ids in cam_a/ and cam_b/", f"ids only in cam_a: {only_a}, only in cam_b: {only_b}"
        )
    return SourceDataset(name, root, records, layout=VIPER_LAYOUT)
