"""Datasets as numpy arrays: checksummed downloads into a cache, one reader per file format, batching and
input corruptions. `load(name, split)` is the entry point; `python -m jaxgen.data` fetches ahead of time."""
from jaxgen.data.batching import (batch_indices, different_class_pairs, epoch_permutation, iterate_batches,
                                  subset, to_float)
from jaxgen.data.cifar import CIFAR10_CLASSES, read_cifar_archive, read_cifar_batch
from jaxgen.data.corruptions import add_gaussian_noise, patch_mask, to_float_jax
from jaxgen.data.datasaurus import load_datasaurus
from jaxgen.data.dataset import DataDownloadError, DataNotFoundError, Dataset
from jaxgen.data.datasets import DATASETS, EXPECTED_FILES, SPLITS, load, resolve_data_dir, splits_of
from jaxgen.data.downloads import (DATA_DIR_ENV, MIRROR_ENV, REGISTRY, CorruptFileError, RemoteFile, cache_dir,
                                   fetch, fetch_url)
from jaxgen.data.idx import MNIST_FILES, read_idx
from jaxgen.data.stl10 import STL10_CLASSES, STL10_FILES, read_stl10_images
from jaxgen.data.tfds_source import TFDS_NAMES

__all__ = [
    "CIFAR10_CLASSES", "DATASETS", "DATA_DIR_ENV", "EXPECTED_FILES", "MIRROR_ENV", "MNIST_FILES", "REGISTRY",
    "SPLITS", "STL10_CLASSES", "STL10_FILES", "TFDS_NAMES", "CorruptFileError", "DataDownloadError",
    "DataNotFoundError", "Dataset", "RemoteFile", "add_gaussian_noise", "batch_indices", "cache_dir",
    "different_class_pairs", "epoch_permutation", "fetch", "fetch_url", "iterate_batches", "load",
    "load_datasaurus", "patch_mask", "read_cifar_archive", "read_cifar_batch", "read_idx", "read_stl10_images",
    "resolve_data_dir", "splits_of", "subset", "to_float", "to_float_jax",
]
