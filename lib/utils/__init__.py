"""Small helpers shared by the whole workbook."""

from .io import atomic_write_bytes, atomic_write_json, atomic_write_text, sha256_file
from .paths import repo_root, resolve_path
from .seed import seed_everything

__all__ = [
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "sha256_file",
    "repo_root",
    "resolve_path",
    "seed_everything",
]
