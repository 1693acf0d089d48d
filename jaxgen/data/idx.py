"""MNIST's idx files (gzipped or not)."""
from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from jaxgen.data.dataset import Dataset, check_pair
from jaxgen.data.downloads import CorruptFileError

MNIST_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
MNIST_CLASSES = tuple(str(i) for i in range(10))


def read_idx(path: Path) -> np.ndarray:
    """An idx file of unsigned bytes as a numpy array; CorruptFileError (naming the file) when unreadable."""
    path = Path(path)
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (EOFError, OSError, zlib.error) as error:
        raise CorruptFileError(f"{path} cannot be read ({error}): the file is incomplete or damaged. "
                               "Delete it to download it again, or replace it with the official file.") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise CorruptFileError(f"{path} is not an unsigned-byte idx file (bad magic number)")
    ndim = raw[3]
    shape = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise CorruptFileError(f"{path} is truncated: header says {shape}, found {data.size} bytes")
    return data.reshape(shape)


def read_mnist(image_file: Path, label_file: Path) -> Dataset:
    images = read_idx(image_file)[..., None]
    labels = read_idx(label_file).astype(np.int64)
    check_pair(images, labels, image_file)
    return Dataset(images, labels, MNIST_CLASSES, str(Path(image_file).parent))
