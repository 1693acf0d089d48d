"""CIFAR-10: the official python-pickle archive (read inside the .tar.gz) or its extracted batches.
(cifar10.npz is read by `jaxgen.data.npz`.)"""
from __future__ import annotations

import io
import pickle
import tarfile
from pathlib import Path

import numpy as np

from jaxgen.data.dataset import Dataset, check_pair
from jaxgen.data.downloads import CorruptFileError

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")
BATCH_FOLDER = "cifar-10-batches-py"
BATCHES = {"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)}


class _BatchUnpickler(pickle.Unpickler):
    """Unpickles a CIFAR batch (a dict of lists, bytes and numpy arrays) and nothing else: no code runs."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("copy_reg", "_reconstructor"),
               ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
               ("copy_reg", "_reconstructor"), ("copyreg", "_reconstructor"), ("__builtin__", "object"),
               ("builtins", "object"), ("_codecs", "encode")}  # the last: bytes in protocol-2 pickles

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not part of a CIFAR batch")
        return super().find_class(module, name)


def read_cifar_batch(file, where) -> tuple[np.ndarray, np.ndarray]:
    """(images (N, 32, 32, 3) uint8, labels (N,) int64) of one pickled batch (a path or a binary file)."""
    try:
        if isinstance(file, (str, Path)):
            with open(file, "rb") as f:
                batch = _BatchUnpickler(f, encoding="bytes").load()
        else:
            batch = _BatchUnpickler(file, encoding="bytes").load()
        data = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except (pickle.UnpicklingError, EOFError, KeyError, ValueError, TypeError) as error:
        raise CorruptFileError(f"{where} is not a CIFAR-10 python batch ({error})") from None
    return data.transpose(0, 2, 3, 1), labels


def _join(parts, where) -> Dataset:
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    check_pair(images, labels, where)
    return Dataset(images, labels, CIFAR10_CLASSES, str(where))


def read_cifar_archive(archive: Path, split: str) -> Dataset:
    """`split` of the official cifar-10-python.tar.gz, read from the archive (nothing is extracted)."""
    wanted = {f"{BATCH_FOLDER}/{name}": name for name in BATCHES[split]}
    found = {}
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                if member.name in wanted:
                    found[wanted[member.name]] = read_cifar_batch(io.BytesIO(tar.extractfile(member).read()),
                                                                  f"{archive}:{member.name}")
    except (tarfile.TarError, EOFError, OSError) as error:
        raise CorruptFileError(f"{archive} cannot be read ({error}). Delete it to download it again.") from None
    missing = [name for name in BATCHES[split] if name not in found]
    if missing:
        raise CorruptFileError(f"{archive} lacks {BATCH_FOLDER}/{missing[0]}: not the official CIFAR-10 archive")
    return _join([found[name] for name in BATCHES[split]], archive)


def read_cifar_folder(folder: Path, split: str) -> Dataset:
    """`split` from an extracted cifar-10-batches-py folder."""
    return _join([read_cifar_batch(folder / name, folder / name) for name in BATCHES[split]], folder)


def has_cifar_folder(folder: Path, split: str) -> bool:
    return all((folder / name).exists() for name in BATCHES[split])
