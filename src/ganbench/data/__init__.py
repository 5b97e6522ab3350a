"""Digit datasets for ganbench: Hoda (.cdb), MNIST (idx) and Sign Language Digits, cached and scaled to [-1, 1]."""

from ganbench.data.cache import cache_root
from ganbench.data.core import DATASETS, DataError, DigitData, data_root
from ganbench.data.hoda import read_hoda_cdb
from ganbench.data.load import load_dataset
from ganbench.data.preprocess import mnist_style

__all__ = [
    "DATASETS",
    "DataError",
    "DigitData",
    "cache_root",
    "data_root",
    "load_dataset",
    "mnist_style",
    "read_hoda_cdb",
]
