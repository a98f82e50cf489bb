"""What the workbook knows about each supported dataset: its reader and its MLR protocol (PROTOCOL §1).

To add a dataset, write a reader returning a :class:`~lib.data.records.SourceDataset` and register a
:class:`DatasetInfo` with :func:`register_dataset` — or skip the code and use a CSV manifest (``csv``).
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

__all__ = ["DatasetInfo", "DATASETS", "get_dataset", "register_dataset"]


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


def get_dataset(name: str) -> DatasetInfo:
    """Look up a dataset by name; the error lists the known names."""
    key = name.lower().replace("-", "").replace("_", "")
    aliases = {"market": "market1501", "duke": "dukemtmc", "dukemtmcreid": "dukemtmc", "caviar4reid": "caviar"}
    key = aliases.get(key, key)
    if key not in DATASETS:
        from ..core.registry import UnknownNameError

        raise UnknownNameError(f"unknown dataset {name!r}; known: {', '.join(DATASETS.names())}")
    return DATASETS.get(key)


for _info in (
    DatasetInfo("market1501", read_market1501, MARKET_LAYOUT, "multi_shot", "random_one", split="subset"),
    DatasetInfo("dukemtmc", read_dukemtmc, MARKET_LAYOUT, "multi_shot", "random_one", split="subset"),
    DatasetInfo("cuhk03", read_cuhk03, CUHK03_LAYOUT, "single_shot", "first_of_pair", num_train_ids=1367, num_test_ids=100),
    DatasetInfo("viper", read_viper, VIPER_LAYOUT, "single_shot", "fixed", (0,), rate_per="identity", num_train_ids=316, num_test_ids=316),
    DatasetInfo("caviar", read_caviar, CAVIAR_LAYOUT, "single_shot", "fixed", (1,), native_lr=True, num_train_ids=25, num_test_ids=25, two_camera_only=True),
    DatasetInfo("csv", read_csv_manifest, CSV_LAYOUT, "multi_shot", "random_one", split="subset", num_splits=1),
    DatasetInfo("synthetic", lambda root: read_csv_manifest(root, name="synthetic"), "a folder made by lib.data.synthetic (manifest.csv + images/)", "multi_shot", "random_one", split="subset", num_splits=1),
):
    register_dataset(_info)
