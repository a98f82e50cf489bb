"""Shared helpers for the dataset readers: layout checks with errors that say what was expected."""

from __future__ import annotations

import os
from pathlib import Path

from ..records import IMAGE_SUFFIXES, DatasetLayoutError

__all__ = ["require_root", "require_dirs", "list_images", "layout_error"]


def layout_error(name: str, root: Path, expected: str, found: str) -> DatasetLayoutError:
    """A :class:`DatasetLayoutError` that names the dataset, the root, what was expected and found."""
    return DatasetLayoutError(
        f"{name}: the folder {root} does not look like the {name} release layout.\n"
        f"  expected: {expected}\n"
        f"  found:    {found}"
    )


def _describe(root: Path, limit: int = 8) -> str:
    try:
        entries = sorted(os.listdir(root))
    except OSError as e:
        return f"unreadable ({e.strerror})"
    if not entries:
        return "an empty folder"
    shown = ", ".join(e + ("/" if (root / e).is_dir() else "") for e in entries[:limit])
    more = f" … (+{len(entries) - limit} more)" if len(entries) > limit else ""
    return shown + more


def require_root(name: str, root: str | os.PathLike, expected: str) -> Path:
    """Return ``root`` as a Path; raise a layout error if it is missing or not a folder."""
    root = Path(root).expanduser()
    if not root.exists():
        raise layout_error(name, root, expected, "the folder does not exist")
    if not root.is_dir():
        raise layout_error(name, root, expected, "a file, not a folder")
    return root


def require_dirs(name: str, root: Path, dirs: list[str], expected: str) -> None:
    """Raise a layout error listing the missing sub-folders of ``root``."""
    missing = [d for d in dirs if not (root / d).is_dir()]
    if missing:
        raise layout_error(
            name, root, expected, f"missing {', '.join(m + '/' for m in missing)}; the folder holds {_describe(root)}"
        )


def list_images(folder: Path) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name.

    A sub-folder named like an image (``0001_c1s1_000001_00.jpg/``, e.g. an image unpacked into a folder of
    its name) is an error saying so, rather than an image that silently goes missing.
    """
    entries = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES]
    folders = sorted(p for p in entries if p.is_dir())
    if folders:
        more = f" (and {len(folders) - 1} more)" if len(folders) > 1 else ""
        raise DatasetLayoutError(f"{folders[0]} is a folder, not an image file{more}; move or rename it")
    return sorted(p for p in entries if p.is_file())
