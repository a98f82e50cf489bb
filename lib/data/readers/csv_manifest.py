"""A generic CSV manifest, so any dataset can be used without writing code.

Format (header required; extra columns are ignored)::

    path,pid,camid,split
    images/0001_c0_00.png,1,0,train
    ...

``path`` is relative to the CSV's folder (or absolute); ``pid`` and ``camid`` are integers (camid 0-based);
``split`` is optional: ``train``/``test`` (identity split, query/gallery drawn by camera resolution) or
``train``/``query``/``gallery`` (a fixed protocol). Without it, random identity splits are drawn.

Each image is listed once (a repeated path is an error naming both lines), and no identity may have rows
in ``train`` and in ``test``/``query``/``gallery`` (the error names the identity and its lines).
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from ..records import ImageRecord, SourceDataset
from ..splits import identity_overlap

__all__ = ["read_csv_manifest", "CSV_LAYOUT"]

CSV_LAYOUT = "a CSV file with header path,pid,camid[,split]"
_SPLITS = {"train", "query", "gallery", "test"}


def read_csv_manifest(csv_path: str | os.PathLike, *, name: str = "csv", check_files: bool = True) -> SourceDataset:
    """Read a CSV manifest; every error names the file and the line."""
    csv_path = Path(csv_path).expanduser()
    if csv_path.is_dir():
        csv_path = csv_path / "manifest.csv"
    if not csv_path.is_file():
        raise FileNotFoundError(f"{name}: manifest {csv_path} does not exist ({CSV_LAYOUT})")
    root = csv_path.parent
    records: list[ImageRecord] = []
    lines: list[int] = []  # the CSV line of each record
    seen: dict[str, int] = {}  # normalised image path -> index of the record that listed it first
    with open(csv_path, newline="") as f:
        reader = csv.DictReader(f)
        cols = reader.fieldnames or []
        missing = [c for c in ("path", "pid", "camid") if c not in cols]
        if missing:
            raise ValueError(f"{csv_path}: expected columns path,pid,camid[,split]; found {cols}; missing {missing}")
        has_split = "split" in cols
        for line, row in enumerate(reader, start=2):
            try:
                pid, camid = int(row["pid"]), int(row["camid"])
            except (TypeError, ValueError):
                raise ValueError(
                    f"{csv_path}:{line}: pid and camid must be integers, found pid={row['pid']!r} camid={row['camid']!r}"
                ) from None
            if camid < 0 or pid < 0:
                raise ValueError(f"{csv_path}:{line}: pid and camid must be ≥ 0, found pid={pid} camid={camid}")
            split = (row.get("split") or "").strip() or None if has_split else None
            if has_split and split not in _SPLITS:
                raise ValueError(f"{csv_path}:{line}: split must be one of {sorted(_SPLITS)}, found {row.get('split')!r}")
            path = (row["path"] or "").strip()
            if not path:
                raise ValueError(f"{csv_path}:{line}: empty path")
            rec = ImageRecord(path, pid, camid, split)
            key = os.path.normpath(root / path)
            if key in seen:
                raise ValueError(_duplicate_message(csv_path, records[seen[key]], lines[seen[key]], rec, line))
            if check_files and (root / path).is_dir():
                raise IsADirectoryError(f"{csv_path}:{line}: {root / path} is a folder, not an image file")
            if check_files and not (root / path).is_file():
                raise FileNotFoundError(f"{csv_path}:{line}: image {root / path} does not exist")
            seen[key] = len(records)
            records.append(rec)
            lines.append(line)
    if not records:
        raise ValueError(f"{csv_path}: the manifest lists no images")
    subsets = {r.subset for r in records}
    if has_split and ("test" in subsets) and (subsets & {"query", "gallery"}):
        raise ValueError(f"{csv_path}: split mixes 'test' with 'query'/'gallery'; use train/test or train/query/gallery")
    if has_split:
        _check_disjoint_identities(csv_path, records, lines)
    return SourceDataset(name, root, records, layout=CSV_LAYOUT, extra={"manifest": str(csv_path)})


def _duplicate_message(csv_path: Path, first: ImageRecord, first_line: int, again: ImageRecord, line: int) -> str:
    """The error for an image listed twice: both lines, and whether the rows agree (a copy) or conflict."""
    def desc(r: ImageRecord) -> str:
        return f"pid={r.pid} camid={r.camid}" + (f" split={r.subset}" if r.subset else "")

    how = "an identical row" if (first.pid, first.camid, first.subset) == (again.pid, again.camid, again.subset) else (
        f"conflicting rows: line {first_line} says {desc(first)}, line {line} says {desc(again)}"
    )
    return (f"{csv_path}:{line}: image {again.path} is listed twice, on lines {first_line} and {line} ({how}); "
            "list each image once")


def _check_disjoint_identities(csv_path: Path, records: list[ImageRecord], lines: list[int]) -> None:
    """Raise if an identity has rows in ``train`` and in ``test``/``query``/``gallery``, naming the lines on both sides
    (:func:`lib.data.splits.identity_overlap`)."""
    where = lambda keep: [(r.pid, f"line {line}") for r, line in zip(records, lines) if keep(r.subset)]  # noqa: E731
    found = identity_overlap(where(lambda s: s == "train"), where(lambda s: s != "train"))
    if found:
        raise ValueError(f"{csv_path}: {found}; train and test identities must be disjoint")
