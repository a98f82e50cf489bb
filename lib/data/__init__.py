"""Data layer: readers, the synthetic dataset, MLR synthesis, splits, torch datasets and samplers."""

from .datasets import ImageDataset, PairDataset, relabel
from .mlr_build import MLRConfig, build_mlr, downsample, load_rgb, to_rgb8
from .mlr_dataset import MLRDataError, MLRDataset, MLRImage, Split
from .mlr_store import MLRBuildError
from .validation import ValidationView
from .records import DatasetLayoutError, ImageReadError, ImageRecord, SourceDataset
from .registry import DATASETS, DatasetInfo, get_dataset, register_csv_dataset, register_dataset
from .samplers import RandomIdentitySampler
from .splits import random_identity_splits
from .transforms import PairedAugment

__all__ = [
    "DATASETS",
    "DatasetInfo",
    "DatasetLayoutError",
    "ImageDataset",
    "ImageReadError",
    "ImageRecord",
    "MLRBuildError",
    "MLRConfig",
    "MLRDataError",
    "MLRDataset",
    "MLRImage",
    "PairDataset",
    "PairedAugment",
    "RandomIdentitySampler",
    "SourceDataset",
    "Split",
    "ValidationView",
    "build_mlr",
    "downsample",
    "get_dataset",
    "load_rgb",
    "random_identity_splits",
    "register_csv_dataset",
    "register_dataset",
    "relabel",
    "to_rgb8",
]
