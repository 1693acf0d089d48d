"""STL-10: the official stl10_binary.tar.gz, extracted once, then its .bin files memory-mapped."""
from __future__ import annotations

import os
import sys
import tarfile
from pathlib import Path

import numpy as np

from jaxgen.data.dataset import Dataset, check_pair
from jaxgen.data.downloads import CorruptFileError

STL10_CLASSES = ("airplane", "bird", "car", "cat", "deer",
                 "dog", "horse", "monkey", "ship", "truck")
BINARY_FOLDER = "stl10_binary"
STL10_FILES = {"train": ("train_X.bin", "train_y.bin"),
               "test": ("test_X.bin", "test_y.bin"),
               "unlabeled": ("unlabeled_X.bin", None)}
ARCHIVE_MEMBERS = ("train_X.bin", "train_y.bin", "test_X.bin", "test_y.bin", "unlabeled_X.bin",
                   "class_names.txt", "fold_indices.txt")
IMAGE_BYTES = 3 * 96 * 96
OFFICIAL_BIN_BYTES = (5_000 + 8_000 + 100_000) * IMAGE_BYTES + 5_000 + 8_000  # the .bin files of the release
DONE_MARKER = ".extracted"


def read_stl10_images(path: Path) -> np.ndarray:
    """STL-10 binary images, column-major 3x96x96 records, as a read-only (N, 96, 96, 3) memory map."""
    size = Path(path).stat().st_size
    if size == 0 or size % IMAGE_BYTES:
        raise CorruptFileError(f"{path} holds {size} bytes, not a whole number of 96x96x3 images: "
                               "the file is incomplete. Delete it to extract or download it again.")
    raw = np.memmap(path, dtype=np.uint8, mode="r", shape=(size // IMAGE_BYTES, 3, 96, 96))
    return raw.transpose(0, 3, 2, 1)


def has_split(folder: Path, split: str) -> bool:
    x_name, y_name = STL10_FILES[split]
    return (folder / x_name).exists() and (y_name is None or (folder / y_name).exists())


def read_split(folder: Path, split: str) -> Dataset:
    """`split` ('train', 'test', 'unlabeled') from an stl10_binary folder; labels 0..9, -1 when unlabelled."""
    x_name, y_name = STL10_FILES[split]
    images = read_stl10_images(folder / x_name)
    if y_name is None:
        labels = np.full(len(images), -1, np.int64)
    else:  # labels on disk are 1..10
        labels = np.fromfile(folder / y_name, dtype=np.uint8).astype(np.int64) - 1
        check_pair(images, labels, folder / x_name)
    return Dataset(images, labels, STL10_CLASSES, str(folder))


def extracted(folder: Path) -> bool:
    return (folder / DONE_MARKER).exists()


def extract_archive(archive: Path, folder: Path, progress: bool = True) -> Path:
    """Stream the .bin files out of `archive` into `folder` (once; the archive is never held in memory)."""
    from tqdm.auto import tqdm

    folder = Path(folder)
    if extracted(folder):
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    official = archive.stat().st_size == 2_640_397_119
    try:
        with tarfile.open(archive, "r|gz") as tar, \
                tqdm(total=OFFICIAL_BIN_BYTES if official else None, unit="B", unit_scale=True, unit_divisor=1024, desc=f"extracting {archive.name}",
                     disable=not progress, file=sys.stderr, leave=False) as bar:
            for member in tar:
                name = Path(member.name).name
                if not member.isfile() or name not in ARCHIVE_MEMBERS:
                    continue
                temporary = folder / f"{name}.tmp"
                with tar.extractfile(member) as source, open(temporary, "wb") as target:
                    while chunk := source.read(1 << 22):
                        target.write(chunk)
                        bar.update(len(chunk) if name.endswith(".bin") else 0)
                os.replace(temporary, folder / name)
    except (tarfile.TarError, EOFError, OSError) as error:
        raise CorruptFileError(f"{archive} cannot be extracted into {folder} ({error}). Delete the archive to "
                               "download it again, or free disk space (STL-10 needs 3.1 GB extracted).") from None
    missing = [name for name in ARCHIVE_MEMBERS[:5] if not (folder / name).exists()]
    if missing:
        raise CorruptFileError(f"{archive} lacks {BINARY_FOLDER}/{missing[0]}: not the official STL-10 archive")
    (folder / DONE_MARKER).write_text(f"extracted from {archive.name}\n")
    return folder
