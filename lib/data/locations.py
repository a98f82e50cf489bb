"""Where a dataset lies under a ``DATA_ROOT``: its own folder, or one of the folders its release, torchreid or fast-reid
put it in; CSV datasets found by their ``manifest.csv``.

A ``DATA_ROOT`` is either a dataset's own folder or a folder holding several. For a dataset the workbook reads
itself, the candidates are ``DATA_ROOT`` itself, then every folder of :attr:`~lib.data.registry.DatasetInfo.folders`
under it (e.g. VIPeR: ``VIPeR/``, torchreid's ``viper/VIPeR/``, …); the first one its reader reads is the dataset.
A candidate that exists but does not read (a half-copied dataset) is passed over, and when none reads, the error
names every folder tried and why each failed.

A CSV dataset (:func:`~lib.data.registry.register_csv_dataset`) is a ``manifest.csv``: ``DATA_ROOT`` itself (the
manifest file, or a folder holding one) or ``DATA_ROOT/<name>/manifest.csv``; its name is the one the user gives
(``DATASET``, ``name=path``), else the manifest's folder name.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from .readers.csv_manifest import read_csv_manifest
from .registry import DATASETS, get_dataset, own_dataset_names, register_csv_dataset

__all__ = [
    "TABLE1_DATASETS",
    "DatasetNotFoundError",
    "candidate_folders",
    "dataset_folder",
    "find_datasets",
    "find_csv_datasets",
    "csv_manifest",
    "select_datasets",
    "refuse_unknown_datasets",
    "check_synthetic_datasets",
]

#: The datasets of the paper's Table I: what :func:`find_datasets` looks for.
TABLE1_DATASETS = ("market1501", "cuhk03", "viper", "dukemtmc", "caviar")

#: The file a CSV dataset's folder holds.
CSV_NAME = "manifest.csv"


class DatasetNotFoundError(FileNotFoundError):
    """No folder a dataset may lie in holds it; the message names every folder tried and why each failed."""


def candidate_folders(name: str) -> tuple[str, ...]:
    """The folders tried for dataset ``name``, relative to a ``DATA_ROOT``: ``.`` (the root itself), then its
    :attr:`~lib.data.registry.DatasetInfo.folders`."""
    return (".",) + tuple(f for f in get_dataset(name).folders if f != ".")


def _first_line(e: BaseException) -> str:
    """An error in one line: a layout error's ``found:`` line (its first line only repeats the folder), else the first."""
    lines = [line.strip() for line in str(e).strip().splitlines()]
    found = [line.removeprefix("found:").strip() for line in lines if line.startswith("found:")]
    return found[0] if found else (lines[0] if lines and lines[0] else type(e).__name__)


def _own_names(info) -> set[str]:
    """The folder names that say a folder is dataset ``info``'s (lower case, ``-`` and ``_`` removed): its name, its
    aliases (``market``, ``duke`` …) and the last part of each of its candidate folders."""
    from .registry import ALIASES

    names = {info.name, *(a for a, n in ALIASES.items() if n == info.name)}
    names |= {f.rsplit("/", 1)[-1] for f in info.folders if f != "."}
    return {_plain(n) for n in names}


def _plain(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "")


def _search(name: str, data_root: Path) -> tuple[Path | None, list[str], list[str]]:
    """``(the first folder the reader reads, the candidates absent, 'folder: why' of those that did not read)``."""
    info = get_dataset(name)
    absent, unreadable = [], []
    for rel in candidate_folders(info.name):
        folder = data_root if rel == "." else data_root / rel
        if not folder.is_dir():
            absent.append(rel)
            continue
        try:
            info.read(folder)
        except (ValueError, OSError) as e:
            unreadable.append(f"{folder} is not readable as {info.name}: {_first_line(e)}")
            continue
        return folder, absent, unreadable
    return None, absent, unreadable


def _one_folder_each(found: dict[str, Path], missing: dict[str, str]) -> None:
    """A folder is one dataset: when several datasets read one folder (Market-1501 and DukeMTMC-reID share a layout:
    a Market folder reads as Duke too), the one the folder is named after (:func:`_own_names`, before or after
    following a symlink) keeps it; without such a name, none does, and each is moved to ``missing`` saying why."""
    by_folder: dict[Path, list[str]] = {}
    for name, folder in found.items():
        by_folder.setdefault(folder.resolve(), []).append(name)
    for folder, names in by_folder.items():
        if len(names) < 2:
            continue
        given = {_plain(found[n].name) for n in names} | {_plain(folder.name)}
        named = [n for n in names if _own_names(get_dataset(n)) & given]
        keep = named[0] if len(named) == 1 else None
        for name in names:
            if name == keep:
                continue
            path = found.pop(name)
            missing[name] = (f"{path} reads as each of {', '.join(names)} and is named after {keep}, so "
                             f"it is not taken for {name}" if keep else
                             f"{path} reads as each of {', '.join(names)} and its name is none of theirs, "
                             f"so it is taken for none: rename it after its dataset (e.g. "
                             f"{' or '.join(get_dataset(n).folders[0] for n in names)}), or "
                             "name the dataset (DATASETS=…)")


def _not_found(name: str, data_root: Path, absent: list[str], unreadable: list[str]) -> str:
    """What was tried for ``name`` under ``data_root``: every candidate, absent or unreadable."""
    parts = []
    if absent:
        parts.append(f"none of {', '.join(absent)} under {data_root}")
    parts += unreadable
    return "; ".join(parts) + f" (expected {get_dataset(name).layout})"


def dataset_folder(name: str, data_root: str | os.PathLike) -> Path:
    """The folder of dataset ``name`` under ``data_root`` (or ``data_root`` itself): the first of
    :func:`candidate_folders` its reader reads.

    Raises:
        DatasetNotFoundError: none reads; the message names every folder tried (absent ones, and each one present with
            its reader's first line of error).
    """
    root = Path(data_root).expanduser()
    found, absent, unreadable = _search(name, root)
    if found is None:
        raise DatasetNotFoundError(f"DATA_ROOT: no {get_dataset(name).name} dataset in {root}: "
                                   f"{_not_found(name, root, absent, unreadable)}")
    return found


def find_datasets(data_root: str | os.PathLike,
                  names: Sequence[str] = TABLE1_DATASETS) -> tuple[dict[str, Path], dict[str, str]]:
    """Datasets ``names`` (default: Table I's) present under ``data_root``: ``(found name → folder, missing name →
    what was tried)``. A folder counts only if its reader reads it, so a half-copied dataset is reported, not used."""
    root = Path(data_root).expanduser()
    found, missing = {}, {}
    for name in names:
        folder, absent, unreadable = _search(name, root)
        if folder is None:
            missing[name] = _not_found(name, root, absent, unreadable)
        else:
            found[name] = folder
    _one_folder_each(found, missing)
    return found, missing


def find_csv_datasets(data_root: str | os.PathLike) -> tuple[dict[str, Path], dict[str, str]]:
    """CSV datasets under ``data_root``, named by their folder: ``data_root/manifest.csv`` (named ``data_root``'s
    folder name) and every ``data_root/<name>/manifest.csv``. Returns ``(name → manifest, name → why it is not
    used)``: a folder named like one of the workbook's own datasets (``viper/manifest.csv``) is reported, not used.
    The manifests are not read here (:func:`select_datasets` reads the ones asked for)."""
    root = Path(data_root).expanduser()
    if not root.is_dir():
        return {}, {}
    candidates = [root / CSV_NAME] + sorted(p / CSV_NAME for p in root.iterdir() if p.is_dir())
    found, clash = {}, {}
    for manifest in candidates:
        if not manifest.is_file():
            continue
        # the root's manifest is named after the root (resolved: DATA_ROOT may be '.'); a sub-folder after itself,
        # not after a symlink's target, so the listed name is the one select_datasets finds
        name = root.resolve().name if manifest.parent == root else manifest.parent.name
        try:
            register_csv_dataset(name)
        except ValueError as e:
            clash[name] = f"{manifest}: {_first_line(e)}"
            continue
        found.setdefault(name, manifest)
    return found, clash


def csv_manifest(name: str, data_root: str | os.PathLike, given: bool = False) -> Path:
    """The manifest of CSV dataset ``name``: ``data_root`` itself when it is a file, else ``data_root/<name>/manifest.csv``,
    else ``data_root/manifest.csv`` (``data_root`` is the dataset's own folder: ``name`` is the user's name for it).

    A ``data_root`` that also holds CSV datasets in folders of their own (``data_root/<other>/manifest.csv``) is a
    folder of datasets: its own ``manifest.csv`` is then the dataset of the folder's name only, so that a misspelt
    name is not built from it; unless ``given`` (the user named this folder for ``name``: ``name=path``).

    Raises:
        DatasetNotFoundError: none exists, naming every path tried.
    """
    root = Path(data_root).expanduser()
    tried = [root] if root.is_file() or root.suffix == ".csv" else [root / name / CSV_NAME, root / CSV_NAME]
    passed_over: list[str] = []
    for path in tried:
        if path.is_file():
            if not given and path == root / CSV_NAME and root.is_dir() and _sub_manifests(root):
                # DATA_ROOT holds CSV datasets in folders of their own: its own manifest is not any name's fallback
                # (a typo would be built from it), only the dataset of the root's own name
                if name != root.resolve().name:
                    passed_over.append(f"(not {path}: {root} holds the CSV datasets "
                                 f"{', '.join(p.parent.name for p in _sub_manifests(root))} in folders of their own, "
                                 f"and its own manifest is the dataset {root.resolve().name!r})")
                    continue
            return path
    known = ", ".join(own_dataset_names())
    raise DatasetNotFoundError(f"dataset {name!r} is not one of the workbook's ({known}) and no CSV manifest of it "
                               f"exists: tried {', '.join(map(str, tried + passed_over))}")


def _sub_manifests(root: Path) -> list[Path]:
    """The ``root/<name>/manifest.csv`` files."""
    return sorted(p / CSV_NAME for p in root.iterdir() if p.is_dir() and (p / CSV_NAME).is_file())


def select_datasets(data_root: str | os.PathLike | None,
                    names: Sequence[str]) -> tuple[dict[str, Path], dict[str, str]]:
    """The datasets ``names`` asks for (``make reproduce DATASETS=…``): ``(found name → folder or manifest, missing
    name → what was tried)``.

    Each entry is one of the workbook's datasets (``viper``, ``market`` …: searched as :func:`dataset_folder`), the
    name of a CSV dataset under ``data_root`` (``shop``: ``data_root/shop/manifest.csv``), or ``name=path`` (a CSV
    dataset anywhere: the manifest or its folder, under the name given). Every CSV manifest found is read (its
    errors name the file and line).

    Raises:
        ValueError: an entry names a dataset twice (two entries, or two CSV datasets given one name), or a
            ``name=path`` entry's name is not a plain name or is one of the workbook's own datasets.
    """
    root = Path(data_root).expanduser() if data_root else None
    found: dict[str, Path] = {}
    missing: dict[str, str] = {}
    for entry in names:
        name, eq, path = str(entry).partition("=")
        if eq and not path.strip():
            raise ValueError(f"DATASETS: the entry {entry!r} has no path after '=' (expected name=/path/to/manifest.csv "
                             "or its folder)")
        before = set(DATASETS.names())  # a CSV name registered by this entry is unregistered on a miss
        if path:
            info = register_csv_dataset(name.strip())
            where: Path | None = Path(path.strip()).expanduser()
        else:
            try:
                info = get_dataset(name)
            except KeyError:
                info = register_csv_dataset(name)
            where = None
        if info.name in found or info.name in missing:
            raise ValueError(f"DATASETS: {info.name!r} is named twice ({', '.join(map(str, names))}); every dataset "
                             "needs its own name, which is its folder under mlr/, runs/ and results/")
        try:
            if info.csv:
                if where is None and root is None:
                    raise DatasetNotFoundError(f"CSV dataset {info.name!r}: no DATA_ROOT to look under (or write "
                                               f"{info.name}=/path/to/manifest.csv)")
                manifest = csv_manifest(info.name, where if where is not None else root, given=where is not None)
                same = [n for n, f in found.items() if f.resolve() == manifest.resolve()]
                if same:
                    raise ValueError(f"DATASETS: {info.name!r} and {same[0]!r} are one manifest, {manifest}; every "
                                     "dataset needs a manifest of its own")
                read_csv_manifest(manifest, name=info.name)
                found[info.name] = manifest
            elif root is None:
                missing[info.name] = "no DATA_ROOT to look under"
            else:
                found[info.name] = dataset_folder(info.name, root)
        except DatasetNotFoundError as e:
            missing[info.name] = str(e).removeprefix("DATA_ROOT: ")
        except (ValueError, OSError) as e:
            if str(e).startswith("DATASETS:"):
                raise
            missing[info.name] = _first_line(e)
        if info.name in missing and info.csv and info.name not in before:  # a typo does not stay a CSV dataset name for later errors
            DATASETS.unregister(info.name)
    _one_folder_each(found, missing)
    return found, missing


def refuse_unknown_datasets(missing: Mapping[str, str]) -> None:
    """Refuse the entries :func:`select_datasets` left ``missing`` that are not among the workbook's own datasets: a
    misspelt name, or a CSV dataset whose manifest is absent or unreadable. Nothing can be planned or trained for
    them, and going on without them would drop a dataset the user named from every table. (An absent dataset of the
    workbook's own, ``market1501`` without its folder, stays missing: the plan prices it from its known size.)

    Raises:
        DatasetNotFoundError: naming each such entry and why (the workbook's datasets, the paths tried).
    """
    bad = {n: why for n, why in missing.items() if n not in DATASETS or DATASETS.get(n).csv}
    if "synthetic" in missing:  # the embedded data is generated, never found under a DATA_ROOT
        bad["synthetic"] = "the embedded synthetic data is made by the workbook, not read from DATA_ROOT: give DATA_ROOT=synthetic"
    if bad:
        raise DatasetNotFoundError("DATASETS: " + "; ".join(f"{n!r}: {why}" for n, why in bad.items()))


def check_synthetic_datasets(datasets: Sequence[str] | None) -> None:
    """``DATA_ROOT=synthetic`` (``make demo``; ``make plan PROFILE=tiny`` unless ``DATA_ROOT`` is given) has one
    dataset: ``DATASETS`` may name only it.

    Raises:
        ValueError: another name, which would otherwise be ignored.
    """
    if datasets and any(d != "synthetic" for d in datasets):
        raise ValueError(f"DATASETS: {list(datasets)} with DATA_ROOT synthetic, whose only dataset is synthetic "
                         "(`make plan PROFILE=tiny` reads the synthetic data unless DATA_ROOT=dir is given: give "
                         "the folder of your datasets)")
