"""Repository-relative paths, so notebooks behave the same from JupyterLab, papermill and nbval.

JupyterLab and nbval run a notebook with its own folder as working directory, papermill with the caller's.
Notebook parameters therefore hold paths relative to the repository root, resolved here.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

__all__ = ["repo_root", "resolve_path", "check_name", "BadNameError", "NAME_PATTERN"]

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


#: What a user-given name that becomes a file or folder name (a profile, a variant, a table) may look like: one
#: path component, never ``..``, a hidden file, an absolute path or a separator, so that it stays under its folder.
NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._+-]*"
_NAME = re.compile(NAME_PATTERN)
_MAX_NAME = 120  # a file name may hold 255 bytes; room for suffixes such as "_ranking.csv" and ".failed.ipynb"


class BadNameError(ValueError):
    """A profile, variant or table name that cannot be a single file or folder name (it would leave its folder)."""


def check_name(value: object, what: str) -> str:
    """``value`` if it is a plain name (:data:`NAME_PATTERN`, at most 120 characters), else :class:`BadNameError`.

    Every user-given name that becomes a path component under the output folder (``PROFILE``, a variant, a table)
    goes through here first, so ``..``, ``../x``, ``/abs/x``, ``.hidden``, an empty name or a NUL byte can never
    send a write outside ``OUTPUT_ROOT``. ``what`` names the parameter or option in the message (``"--variant"``).
    """
    if not isinstance(value, str):
        raise BadNameError(f"{what}: expected a name (a string), found {type(value).__name__} {value!r}")
    if not _NAME.fullmatch(value) or len(value) > _MAX_NAME:
        why = ("it is empty" if not value else f"it is longer than {_MAX_NAME} characters" if len(value) > _MAX_NAME
               else "it holds a path separator" if "/" in value or "\\" in value
               else "it starts with '.'" if value.startswith(".")
               else f"it starts with {value[0]!r}" if not _NAME.fullmatch(value[0])
               else f"it holds {''.join(sorted({c for c in value if not _NAME.fullmatch('a' + c)}))!r}")
        raise BadNameError(f"{what}: {value!r} is not a valid name ({why}); a name becomes a file or folder name "
                           "under the output folder: letters, digits and . _ + -, starting with a letter or digit")
    return value
