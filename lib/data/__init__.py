"""Data layer: readers, the synthetic dataset, MLR synthesis, splits, torch datasets and samplers."""

from .datasets import ImageDataset, PairDataset, relabel
from .mlr import MLRConfig, build_mlr, downsample, load_rgb
from .mlr_dataset import MLRDataset, MLRImage, Split
from .validation import ValidationView
from .records import DatasetLayoutError, ImageReadError, ImageRecord, SourceDataset
from .registry import DATASETS, DatasetInfo, get_dataset, register_dataset
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
    "MLRConfig",
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
    "register_dataset",
    "relabel",
]
