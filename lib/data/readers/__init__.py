"""Readers for the original release layouts of the supported datasets."""

from .caviar import read_caviar, two_camera_identities
from .csv_manifest import read_csv_manifest
from .cuhk03 import read_cuhk03, read_cuhk03_split_file
from .market import read_dukemtmc, read_market1501
from .viper import read_viper

__all__ = [
    "read_caviar",
    "read_csv_manifest",
    "read_cuhk03",
    "read_cuhk03_split_file",
    "read_dukemtmc",
    "read_market1501",
    "read_viper",
    "two_camera_identities",
]
