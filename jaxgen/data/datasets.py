"""Datasets by name: `load(name, split)` returns uint8 NHWC images and int64 labels.

The default source reads the official distribution files from the data folder (`data_dir`, else
`$JAXGEN_DATA_DIR`, else the user cache folder) and downloads the missing ones there first, checked
against the table in `downloads`. Files derived from them that a user placed there (cifar10.npz, an
extracted cifar-10-batches-py/ or stl10_binary/, stl10.npz) are read as they are. `data_source="tfds"`
(or `$JAXGEN_DATA_SOURCE=tfds`) reads through TFDS instead.
"""
from __future__ import annotations

import os
from pathlib import Path

from jaxgen.data import cifar, idx, npz, stl10
from jaxgen.data.dataset import DataDownloadError, DataNotFoundError, Dataset
from jaxgen.data.downloads import DATA_DIR_ENV, REGISTRY, check_file, data_folder, fetch
from jaxgen.data.tfds_source import load_tfds
from jaxgen.errors import ConfigError, DownloadError

SOURCE_ENV = "JAXGEN_DATA_SOURCE"
SOURCES = ("files", "tfds")
SPLITS = ("train", "test")
SPLIT_ALIASES = {"unlabelled": "unlabeled"}  # TFDS's spelling
DATASETS = ("mnist", "cifar10", "stl10", "stl10_first37")
FIRST37 = Path("stl10") / "derived" / "stl10_test_X_first37_unlabeled.npz"
EXPECTED_FILES = {
    "mnist": "mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz",
    "cifar10": "cifar10/cifar-10-python.tar.gz (or cifar10/cifar10.npz, or cifar10/cifar-10-batches-py/)",
    "stl10": "stl10/stl10_binary.tar.gz (or stl10/stl10_binary/*.bin, or stl10/stl10.npz)",
    "stl10_first37": str(FIRST37),
}


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path | None:
    """The folder a user named: the argument, else `$JAXGEN_DATA_DIR`, else None."""
    chosen = data_dir or os.environ.get(DATA_DIR_ENV)
    return Path(chosen).expanduser() if chosen else None


def splits_of(name: str) -> tuple[str, ...]:
    return SPLITS + (("unlabeled",) if name == "stl10" else ())


def load(name: str, split: str = "train", data_dir: str | os.PathLike | None = None,
         allow_download: bool = True, data_source: str | None = None, progress: bool = True) -> Dataset:
    """Images (uint8 NHWC) and labels of `name` ('mnist', 'cifar10', 'stl10', 'stl10_first37').

    Splits: 'train', 'test', and for stl10 'unlabeled' (labels -1). With `allow_download=False` a
    dataset missing from the data folder raises DataNotFoundError instead of being downloaded.
    """
    if name not in DATASETS:
        raise ConfigError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}")
    split = SPLIT_ALIASES.get(split, split)
    if split not in splits_of(name):
        raise ConfigError(f"{name} has the splits {', '.join(splits_of(name))}, not {split!r}")
    source = data_source or os.environ.get(SOURCE_ENV) or "files"
    if source not in SOURCES:
        raise ConfigError(f"unknown data source {source!r}; choose from {', '.join(SOURCES)}")
    if source == "tfds":
        return load_tfds(name, split, allow_download=allow_download)
    folder = data_folder(data_dir)
    local = _read_local(name, split, folder, progress)
    if local is not None:
        return local
    if name == "stl10_first37":
        raise DataNotFoundError(
            f"stl10_first37 (37 STL-10 test images kept from a partial archive) is not downloadable and is not "
            f"at {folder / FIRST37}. Use --dataset stl10 for the whole STL-10 (a 2.6 GB download).")
    if not allow_download:
        raise DataNotFoundError(
            f"{name} is not in {folder}: expected {EXPECTED_FILES[name]} there. Download it with "
            f"`python -m jaxgen.data download {name}`, or set {DATA_DIR_ENV} to a folder that holds it.")
    try:
        paths = [fetch(file, data_dir, progress) for file in _official_files(name, split)]
    except DownloadError as error:
        raise DataDownloadError(str(error)) from None
    return _read_official(name, split, paths, folder, progress)


def _official_files(name: str, split: str) -> tuple[str, ...]:
    if name == "mnist":
        return idx.MNIST_FILES["train" if split == "train" else "test"]
    return {"cifar10": ("cifar-10-python.tar.gz",), "stl10": ("stl10_binary.tar.gz",)}[name]


def _checked(path: Path) -> Path:
    """`path`, checked against the table (once) when it is an official file."""
    file = REGISTRY.get(path.name)
    return check_file(path, file.known_hash, file.size) if file else path


def _read_official(name: str, split: str, paths: list[Path], folder: Path, progress: bool) -> Dataset:
    if name == "mnist":
        return idx.read_mnist(*paths)
    if name == "cifar10":
        return cifar.read_cifar_archive(paths[0], split)
    binary = stl10.extract_archive(paths[0], paths[0].parent / stl10.BINARY_FOLDER, progress)
    return stl10.read_split(binary, split)


def _read_local(name: str, split: str, folder: Path, progress: bool) -> Dataset | None:
    """The dataset from files already in `folder/<name>/` (or `folder/` itself); None when there are none."""
    if name == "stl10_first37":
        return _read_first37(folder / FIRST37) if (folder / FIRST37).exists() else None
    for where in (folder / name, folder):
        if name == "mnist":
            files = [where / f for f in idx.MNIST_FILES[split]]
            if all(f.exists() for f in files):
                return idx.read_mnist(*(_checked(f) for f in files))
        elif name == "cifar10":
            if (where / "cifar10.npz").exists():
                return npz.read_split(where / "cifar10.npz", split, cifar.CIFAR10_CLASSES)
            if cifar.has_cifar_folder(where / cifar.BATCH_FOLDER, split):
                return cifar.read_cifar_folder(where / cifar.BATCH_FOLDER, split)
            if (where / "cifar-10-python.tar.gz").exists():
                return cifar.read_cifar_archive(_checked(where / "cifar-10-python.tar.gz"), split)
        elif name == "stl10":
            if (where / "stl10.npz").exists():
                try:
                    return npz.read_split(where / "stl10.npz", split, stl10.STL10_CLASSES)
                except KeyError:  # e.g. no x_unlabeled: that split must come from elsewhere, never from test
                    pass
            binary = where / stl10.BINARY_FOLDER
            if stl10.has_split(binary, split):
                return stl10.read_split(binary, split)
            if (where / "stl10_binary.tar.gz").exists():
                archive = _checked(where / "stl10_binary.tar.gz")
                return stl10.read_split(stl10.extract_archive(archive, binary, progress), split)
    return None


def _read_first37(path: Path) -> Dataset:
    """The 37 real STL-10 test images decoded from a partial archive (no labels), for every split."""
    import numpy as np

    images = np.load(path)["x"]
    return Dataset(images, np.full(len(images), -1, np.int64), stl10.STL10_CLASSES, str(path))
