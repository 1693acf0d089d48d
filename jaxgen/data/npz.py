"""A dataset's splits as arrays in one .npz (cifar10.npz, stl10.npz): x_<split> images, y_<split> labels."""
from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy as np

from jaxgen.data.dataset import Dataset, check_pair
from jaxgen.data.downloads import CorruptFileError


def read_split(path: Path, split: str, default_classes: tuple[str, ...]) -> Dataset:
    """`split` of an .npz holding x_train, y_train, x_test, y_test (and x_unlabeled, class_names if any).

    Only the arrays of that very split are read: a file without x_unlabeled has no unlabeled split.
    """
    try:
        with np.load(path, allow_pickle=False) as arrays:
            if f"x_{split}" not in arrays:
                raise KeyError(split)
            images = arrays[f"x_{split}"]
            labels = (arrays[f"y_{split}"].astype(np.int64) if f"y_{split}" in arrays
                      else np.full(len(images), -1, np.int64))
            classes = tuple(str(c) for c in arrays["class_names"]) if "class_names" in arrays else default_classes
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as error:
        raise CorruptFileError(f"{path} cannot be read as an .npz archive ({error}): it is incomplete or "
                               "damaged. Delete it, or replace it with a complete copy.") from None
    if images.ndim == 3:
        images = images[..., None]
    check_pair(images, labels, path)
    return Dataset(np.ascontiguousarray(images, dtype=np.uint8), labels, classes, str(path))
