"""Repository-relative paths, so notebooks behave the same from JupyterLab, papermill and nbval.

JupyterLab and nbval run a notebook with its own folder as working directory, papermill with the caller's.
Notebook parameters therefore hold paths relative to the repository root, resolved here.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["repo_root", "resolve_path"]

_MARKERS = ("pyproject.toml", "Makefile")


def repo_root() -> Path:
    """The workbook's root folder (the one holding ``pyproject.toml`` and ``Makefile``).

    ``REID_WORKBOOK_ROOT`` overrides the search. Falls back to the folder above this package.
    """
    env = os.environ.get("REID_WORKBOOK_ROOT")
    if env:
        return Path(env).resolve()
    here = Path(__file__).resolve()
    for parent in here.parents:
        if all((parent / m).exists() for m in _MARKERS):
            return parent
    return here.parents[2]


def resolve_path(path: str | os.PathLike) -> Path:
    """``path`` unchanged if absolute (after ``~`` expansion), else relative to :func:`repo_root`."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else (repo_root() / p)
