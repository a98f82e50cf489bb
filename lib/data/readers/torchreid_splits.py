"""Identity splits from the split files torchreid writes beside a dataset.

torchreid (``KaiyangZhou/deep-person-reid``) draws VIPeR's random splits once and keeps them in
``<root>/viper/splits.json`` beside the images (``<root>/viper/VIPeR/cam_a``); CUHK03's 20 classic splits and its new
767/700 split are ``<root>/cuhk03/splits_classic_{labeled,detected}.json`` and ``splits_new_*.json``. Format (all of
them)::

    [ {"train":   [[img_path, pid, camid], ...],
       "query":   [[img_path, pid, camid], ...],
       "gallery": [[img_path, pid, camid], ...],
       "num_train_pids": N, "num_query_pids": M, "num_gallery_pids": M, ...},
      ... ]

``img_path`` is absolute on the machine that wrote the file; ``pid`` is relabelled per side (training identities
0..N-1, test identities 0..M-1 again), so images are matched to this dataset's records by path, and the identity of
an image is this dataset's. VIPeR's file holds 20 entries: 10 random halvings of the identities, each twice (camera A
as query, then camera B), so entries 2k and 2k+1 are the same identity split. The workbook's protocol fixes which
camera is LR (query) itself, so identical identity splits are kept once, in file order: VIPeR's 20 entries give 10
splits (:class:`SplitFile` records which entries each came from).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath

from ...utils.io import sha256_bytes
from ..records import SourceDataset

__all__ = ["SplitFile", "read_torchreid_splits", "read_test_identities", "split_file_summary", "torchreid_split_file",
           "TORCHREID_SPLIT_FILES", "SPLIT_FILE_FORMAT"]

#: How a manifest names the format of a split file it took its identities from.
SPLIT_FILE_FORMAT = "torchreid splits (list of {train, query, gallery: [[img_path, pid, camid], ...]})"

#: Where torchreid keeps each dataset's split file, relative to the dataset's folder (``{variant}``: CUHK03's
#: ``labeled`` / ``detected``). VIPeR's is in torchreid's ``viper/`` folder, above ``VIPeR/``; one copied into the
#: VIPeR folder itself is taken too.
TORCHREID_SPLIT_FILES: dict[str, tuple[str, ...]] = {
    "viper": ("splits.json", "../splits.json"),
    "cuhk03": ("splits_classic_{variant}.json",),
}

_SIDES = ("train", "query", "gallery")


@dataclass(frozen=True)
class SplitFile:
    """The identity splits read from a split file.

    Attributes:
        path: the file; ``sha256``: its content hash.
        num_entries: the splits the file lists.
        splits: the distinct ``(train pids, test pids)``, each sorted, in file order (this dataset's person ids).
        entries: per split, the file's entries (0-based) that gave it (VIPeR: ``[0, 1]``, ``[2, 3]`` …).
    """

    path: Path
    sha256: str
    num_entries: int
    splits: list[tuple[list[int], list[int]]] = field(default_factory=list)
    entries: list[list[int]] = field(default_factory=list)

    def record(self) -> dict:
        """What a manifest records of the file (``split_file``): path, hash, format, entries per split."""
        return {"path": str(self.path), "sha256": self.sha256, "format": SPLIT_FILE_FORMAT,
                "num_entries": self.num_entries, "entries": self.entries}


def torchreid_split_file(name: str, folder: str | os.PathLike, variant: str = "labeled") -> Path:
    """The split file torchreid keeps for dataset ``name`` whose images are in ``folder``.

    Raises:
        ValueError: torchreid writes no split file for ``name``.
        FileNotFoundError: none of the places it may be holds it, naming them.
    """
    if name not in TORCHREID_SPLIT_FILES:
        raise ValueError(f"SPLIT_FILE: torchreid writes no split file for {name!r} (only for "
                         f"{', '.join(TORCHREID_SPLIT_FILES)}); leave SPLIT_FILE empty for this dataset")
    folder = Path(folder)
    tried = [Path(os.path.normpath(folder / rel.format(variant=variant))) for rel in TORCHREID_SPLIT_FILES[name]]
    for path in tried:
        if path.is_file():
            return path
    raise FileNotFoundError(f"SPLIT_FILE: torchreid: no {name} split file beside {folder}: tried "
                            f"{', '.join(map(str, tried))} (torchreid writes it the first time it loads the dataset)")


def _load(path: Path, name: str) -> tuple[list, bytes]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"{name}: split file {path} does not exist") from None
    try:
        splits = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{name}: split file {path} is not valid JSON ({e})") from None
    if not isinstance(splits, list) or not splits:
        raise ValueError(f"{name}: split file {path}: expected a non-empty JSON list of splits "
                         f"({SPLIT_FILE_FORMAT}), found {type(splits).__name__}{' (empty)' if splits == [] else ''}")
    return splits, data


def _parts(path: str) -> tuple[str, ...]:
    """A path written on any system as its components (a file written on Windows has backslashes)."""
    return (PureWindowsPath(path) if "\\" in path else PurePosixPath(path)).parts


def _matcher(ds: SourceDataset):
    """``item path → record pid`` by the trailing components of the path that make a record's path (``cam_a/000_45.bmp``:
    VIPeR's file names repeat across its cameras, so the file name alone does not say which image it is)."""
    by_path = {_parts(r.path): r.pid for r in ds.records}
    lengths = sorted({len(k) for k in by_path})

    def pid_of(path: str) -> int | None:
        parts = _parts(path)
        for n in lengths:
            if len(parts) >= n and parts[-n:] in by_path:
                return by_path[parts[-n:]]
        return None

    return pid_of


def read_torchreid_splits(path: str | os.PathLike, ds: SourceDataset) -> SplitFile:
    """The identity splits of a torchreid split file (module docstring) for dataset ``ds``.

    Each entry's training identities are those of its ``train`` images, its test identities those of its ``query``
    and ``gallery`` images. Checked, each error naming the file, the entry and what was found: every image is one of
    ``ds``'s (by path); within a side, one torchreid pid is one person of ``ds`` and back (the file was written for
    this dataset); no identity is on both sides; every identity of ``ds`` is on one side.
    """
    path = Path(path)
    splits, data = _load(path, ds.name)
    pid_of = _matcher(ds)
    everyone = set(ds.pids)
    out = SplitFile(path, sha256_bytes(data), len(splits))
    for i, entry in enumerate(splits):
        where = f"{ds.name}: split file {path}, entry {i}"
        if not isinstance(entry, dict) or any(not isinstance(entry.get(s), list) for s in _SIDES):
            raise ValueError(f"{where}: expected a dict with train, query and gallery lists of [img_path, pid, camid], "
                             f"found {sorted(entry) if isinstance(entry, dict) else type(entry).__name__}")
        ids: dict[str, set[int]] = {}
        for side_name, sides in (("train", ("train",)), ("test", ("query", "gallery"))):
            mine: dict[object, int] = {}  # torchreid pid -> ours
            theirs: dict[int, object] = {}  # ours -> torchreid pid
            for s in sides:
                for item in entry[s]:
                    if (not isinstance(item, (list, tuple)) or len(item) < 2 or not isinstance(item[0], str)
                            or not isinstance(item[1], (int, str)) or isinstance(item[1], bool)):
                        raise ValueError(f"{where}: {s} holds {item!r}, expected [img_path, pid, camid] with a str "
                                         "path and an int (or str) pid")
                    pid = pid_of(item[0])
                    if pid is None:
                        raise ValueError(f"{where}: {s} names {item[0]}, which is not an image of {ds.root}")
                    if mine.setdefault(item[1], pid) != pid or theirs.setdefault(pid, item[1]) != item[1]:
                        raise ValueError(f"{where}: {s} gives torchreid pid {item[1]} to {item[0]} (person {pid} here), "
                                         f"but the same side has pid {item[1]} as person {mine[item[1]]} and person "
                                         f"{pid} as pid {theirs[pid]}: the file was not written for this dataset")
            ids[side_name] = set(mine.values())
        both = sorted(ids["train"] & ids["test"])
        if both:
            raise ValueError(f"{where}: identities {both[:5]} are in its train and in its query/gallery images")
        left = sorted(everyone - ids["train"] - ids["test"])
        if left:
            raise ValueError(f"{where}: {len(left)} of the {len(everyone)} identities of {ds.root} are in none of its "
                             f"lists (e.g. {left[:5]}): the file was written for another copy of the dataset")
        split = (sorted(ids["train"]), sorted(ids["test"]))
        if split in out.splits:
            out.entries[out.splits.index(split)].append(i)
        else:
            out.splits.append(split)
            out.entries.append([i])
    return out


def split_file_summary(path: str | os.PathLike, name: str) -> SplitFile:
    """The file's hash and entries, one split each, its images not read (what a manifest records of CUHK03's file,
    whose identities :func:`read_test_identities` reads)."""
    path = Path(path)
    splits, data = _load(path, name)
    return SplitFile(path, sha256_bytes(data), len(splits), entries=[[i] for i in range(len(splits))])


def read_test_identities(path: str | os.PathLike, ds: SourceDataset) -> list[list[int]]:
    """Per entry of a torchreid split file, the sorted test person ids (``ds``'s numbering): those of its ``query`` and
    ``gallery`` images, matched to ``ds`` by file name; ``train`` is not read (CUHK03's reading: the other identities
    train)."""
    path = Path(path)
    splits, _ = _load(path, ds.name)
    by_name = {Path(r.path).name: r.pid for r in ds.records}
    out = []
    for i, split in enumerate(splits):
        if not isinstance(split, dict) or any(not isinstance(split.get(s), list) for s in ("query", "gallery")):
            raise ValueError(f"{ds.name}: split {i} in {path} has no 'query'/'gallery' lists")
        if not split["query"] or not split["gallery"]:
            raise ValueError(f"{ds.name}: split {i} in {path}: its {'query' if not split['query'] else 'gallery'} "
                             "list is empty (expected the test images as [img_path, pid, camid])")
        test = set()
        for item in split["query"] + split["gallery"]:
            if not isinstance(item, (list, tuple)) or not item or not isinstance(item[0], str):
                raise ValueError(f"{ds.name}: split {i} in {path} holds {item!r}, expected [img_path, pid, camid]")
            fname = _parts(item[0])[-1]
            if fname not in by_name:
                raise ValueError(f"{ds.name}: split {i} in {path} names {fname}, which is not in {ds.root}")
            test.add(by_name[fname])
        out.append(sorted(test))
    return out
