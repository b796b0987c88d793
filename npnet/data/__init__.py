"""Datasets: the IDX reader, MNIST's locator and downloader, the registered datasets (the
built-in ones, Fashion-MNIST and KMNIST, the user's own npz/csv files and image folders) and
`load_dataset`, which splits and normalizes one for training."""

from npnet.data import arrays, datasets, image_folder, mnist_like
from npnet.data.dataset import (
    Dataset,
    Splits,
    apply_normalization,
    fit_normalization,
    load_dataset,
)
from npnet.data.idx import decode_idx, encode_idx, read_idx
from npnet.data.mnist import cache_dir, download_mnist, find_mnist, load_mnist, search_places

__all__ = [
    "Dataset",
    "Splits",
    "apply_normalization",
    "arrays",
    "cache_dir",
    "datasets",
    "decode_idx",
    "download_mnist",
    "encode_idx",
    "find_mnist",
    "fit_normalization",
    "image_folder",
    "load_dataset",
    "load_mnist",
    "mnist_like",
    "read_idx",
    "search_places",
]
