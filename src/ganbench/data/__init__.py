"""Digit datasets for ganbench: Hoda (.cdb), MNIST (idx) and Sign Language Digits, cached and scaled to [-1, 1]."""

from ganbench.data.cache import cache_root
from ganbench.data.core import (
    DATASETS,
    DEFAULT_PREPROCESS,
    PREPROCESSINGS,
    DataError,
    DigitData,
    data_root,
    dataset_label,
    drawn_from,
    preprocess_problem,
    same_images,
)
from ganbench.data.hoda import read_hoda_cdb
from ganbench.data.hoda_reader import hoda_reader
from ganbench.data.load import load_dataset
from ganbench.data.preprocess import mnist_style

__all__ = [
    "DATASETS",
    "DEFAULT_PREPROCESS",
    "PREPROCESSINGS",
    "DataError",
    "DigitData",
    "cache_root",
    "data_root",
    "dataset_label",
    "drawn_from",
    "hoda_reader",
    "load_dataset",
    "mnist_style",
    "preprocess_problem",
    "read_hoda_cdb",
    "same_images",
]
