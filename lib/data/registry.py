"""What the workbook knows about each supported dataset: its reader and its MLR protocol (PROTOCOL §1).

To add a dataset, write a reader returning a :class:`~lib.data.records.SourceDataset` and register a
:class:`DatasetInfo` with :func:`register_dataset` — or skip the code and use a CSV manifest: a CSV dataset is
registered under its user-given name by :func:`register_csv_dataset` (``csv`` is the unnamed one of earlier versions).

Where each dataset's folder may lie under a ``DATA_ROOT`` (its release's names, torchreid's and fast-reid's layouts) is
:attr:`DatasetInfo.folders`; :mod:`lib.data.locations` searches them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..core.registry import Registry
from .readers import read_caviar, read_csv_manifest, read_cuhk03, read_dukemtmc, read_market1501, read_viper
from .readers.caviar import CAVIAR_LAYOUT
from .readers.csv_manifest import CSV_LAYOUT
from .readers.cuhk03 import CUHK03_LAYOUT
from .readers.market import MARKET_LAYOUT
from .readers.viper import VIPER_LAYOUT
from .records import SourceDataset

__all__ = ["DatasetInfo", "DATASETS", "get_dataset", "own_dataset_names", "register_dataset", "register_csv_dataset"]


@dataclass(frozen=True)
class DatasetInfo:
    """A dataset's reader and its cross-resolution protocol.

    Attributes:
        name: registry key.
        read: ``read(root) -> SourceDataset``.
        layout: the expected release layout, in words (used in error messages and the README).
        eval_protocol: ``'single_shot'`` (gallery redrawn with one image per identity) or ``'multi_shot'``.
        lr_cameras: which cameras become low-resolution: ``'fixed'`` (``fixed_lr_cameras``), ``'first_of_pair'``
            (even camera ids: CUHK03's first camera of each pair) or ``'random_one'`` (one camera, seeded).
        rate_per: ``'identity'`` (one rate per person, rates in equal thirds — SING's MLR-VIPeR) or ``'image'``.
        native_lr: the LR camera is genuinely low-resolution (CAVIAR): nothing is synthesised.
        split: ``'random'`` identity splits, or ``'subset'`` (the release fixes train/query/gallery or
            train/test per image; falls back to random splits by ``train_fraction`` when it does not).
        num_train_ids / num_test_ids: sizes of random splits (``None``: by ``train_fraction``).
        num_splits: default number of random splits.
        two_camera_only: keep only identities seen by at least two cameras (CAVIAR's 50 of 72).
        folders: the folders under a ``DATA_ROOT`` that may hold the dataset, in the order they are tried
            (:func:`dataset_folders`: the release's own names, torchreid's ``<dataset_dir>/<release folder>``,
            fast-reid's names, a release unpacked into a folder of its own name).
        csv: read from a CSV manifest (:func:`register_csv_dataset`): the dataset is the user's, named by the user.
    """

    name: str
    read: Callable[..., SourceDataset]
    layout: str
    eval_protocol: str
    lr_cameras: str
    fixed_lr_cameras: tuple[int, ...] = ()
    rate_per: str = "image"
    native_lr: bool = False
    split: str = "random"
    num_train_ids: int | None = None
    num_test_ids: int | None = None
    train_fraction: float = 0.5
    num_splits: int = 10
    two_camera_only: bool = False
    folders: tuple[str, ...] = ()
    csv: bool = False


def dataset_folders(names: tuple[str, ...], torchreid: str | None = None) -> tuple[str, ...]:
    """The folders a dataset may lie in under a ``DATA_ROOT``, in the order tried: each of ``names`` (the folder its
    release unpacks to and the names fast-reid and others give it), each inside torchreid's ``dataset_dir``
    (``viper/VIPeR``, ``market1501/Market-1501-v15.09.15``), then each inside one of ``names`` (a zip unpacked into a
    folder of its own name or another of the dataset's: ``VIPeR/VIPeR``, ``VIPeR.v1.0/VIPeR``; two names that differ only
    in case are not nested in each other)."""
    out = list(names)
    if torchreid:
        out += [torchreid] + [f"{torchreid}/{n}" for n in names]
    out += [f"{a}/{b}" for a in names for b in names if a == b or a.lower() != b.lower()]
    return tuple(dict.fromkeys(out))


#: The known datasets by name (the core :class:`~lib.core.registry.Registry`: a second dataset of one name is refused).
DATASETS: Registry = Registry("dataset")


def register_dataset(info: DatasetInfo) -> DatasetInfo:
    """Add a dataset to :data:`DATASETS`; a name already registered is an error (``ValueError``) naming it."""
    if info.eval_protocol not in ("single_shot", "multi_shot"):
        raise ValueError(f"{info.name}: eval_protocol must be 'single_shot' or 'multi_shot', got {info.eval_protocol!r}")
    if info.lr_cameras not in ("fixed", "first_of_pair", "random_one"):
        raise ValueError(f"{info.name}: lr_cameras must be fixed|first_of_pair|random_one, got {info.lr_cameras!r}")
    if info.rate_per not in ("identity", "image"):
        raise ValueError(f"{info.name}: rate_per must be 'identity' or 'image', got {info.rate_per!r}")
    DATASETS.register(info.name, info)
    return info


#: Other names of the workbook's datasets (lower case, ``-`` and ``_`` removed) -> the registered name.
ALIASES: dict[str, str] = {"market": "market1501", "duke": "dukemtmc", "dukemtmcreid": "dukemtmc",
                           "caviar4reid": "caviar"}


def own_dataset_names() -> list[str]:
    """The workbook's own datasets (``caviar``, ``viper``, ``synthetic`` …), without the CSV ones: what an error about
    an unknown dataset name lists."""
    return [n for n in DATASETS.names() if not DATASETS.get(n).csv]


def get_dataset(name: str) -> DatasetInfo:
    """Look up a dataset by name (exactly as registered, else case, ``-`` and ``_`` aside, or an alias such as
    ``duke``); the error lists the known names."""
    if isinstance(name, str) and name in DATASETS:
        return DATASETS.get(name)
    key = name.lower().replace("-", "").replace("_", "")
    key = ALIASES.get(key, key)
    if key not in DATASETS:
        from ..core.registry import UnknownNameError

        named = [n for n in DATASETS.names() if DATASETS.get(n).csv and n != "csv"]  # the user's, this session
        own = [n for n in DATASETS.names() if n not in named]
        raise UnknownNameError(f"unknown dataset {name!r}; known: {', '.join(own)}"
                               + (f"; CSV datasets named so far: {', '.join(named)}" if named else ""))
    return DATASETS.get(key)


def register_csv_dataset(name: str) -> DatasetInfo:
    """The CSV-manifest dataset named ``name`` (:func:`~lib.data.readers.read_csv_manifest`, the protocol of ``csv``),
    registered on first use; its name is the one every folder, summary and table row of it carries.

    Raises:
        ValueError: ``name`` is taken by a dataset the workbook reads itself (``viper``, ``synthetic`` …, aliases such
            as ``duke`` included), naming it; or it is not a plain name (:func:`lib.utils.paths.check_name`).
    """
    from ..utils.paths import check_name

    check_name(name, "CSV dataset name")
    try:
        known = get_dataset(name)
    except KeyError:
        known = None
    if known is not None:
        if known.csv:
            return known
        raise ValueError(f"CSV dataset {name!r}: the name is the workbook's own dataset {known.name!r} ({known.layout}); "
                         "give the CSV dataset another name (its folder's, or DATASET / name=path)")
    return register_dataset(DatasetInfo(name, lambda root: read_csv_manifest(root, name=name), CSV_LAYOUT, "multi_shot",
                                        "random_one", split="subset", num_splits=1, csv=True))


for _info in (
    DatasetInfo("market1501", read_market1501, MARKET_LAYOUT, "multi_shot", "random_one", split="subset",
                folders=dataset_folders(("Market-1501-v15.09.15", "Market-1501", "market1501"), "market1501")),
    DatasetInfo("dukemtmc", read_dukemtmc, MARKET_LAYOUT, "multi_shot", "random_one", split="subset",
                folders=dataset_folders(("DukeMTMC-reID", "dukemtmc-reid", "dukemtmc"), "dukemtmc-reid")),
    DatasetInfo("cuhk03", read_cuhk03, CUHK03_LAYOUT, "single_shot", "first_of_pair", num_train_ids=1367, num_test_ids=100,
                folders=dataset_folders(("cuhk03", "CUHK03", "cuhk03_release"), "cuhk03")),
    DatasetInfo("viper", read_viper, VIPER_LAYOUT, "single_shot", "fixed", (0,), rate_per="identity", num_train_ids=316, num_test_ids=316,
                folders=dataset_folders(("VIPeR", "viper", "VIPeR.v1.0"), "viper")),
    DatasetInfo("caviar", read_caviar, CAVIAR_LAYOUT, "single_shot", "fixed", (1,), native_lr=True, num_train_ids=25, num_test_ids=25, two_camera_only=True,
                folders=dataset_folders(("CAVIAR4REID", "caviar4reid", "CAVIAR", "CAVIARa"))),
    DatasetInfo("csv", read_csv_manifest, CSV_LAYOUT, "multi_shot", "random_one", split="subset", num_splits=1, csv=True),
    DatasetInfo("synthetic", lambda root: read_csv_manifest(root, name="synthetic"), "a folder made by lib.data.synthetic (manifest.csv + images/)", "multi_shot", "random_one", split="subset", num_splits=1),
):
    register_dataset(_info)
