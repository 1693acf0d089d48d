"""The record every reader returns, and the errors a missing or corrupt dataset raises."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from jaxgen.data.downloads import CorruptFileError
from jaxgen.errors import DataError, DownloadError


@dataclass(frozen=True)
class Dataset:
    images: np.ndarray  # uint8, (N, H, W, C); may be a read-only memory map
    labels: np.ndarray  # int64, (N,); -1 where the split is unlabelled
    class_names: tuple[str, ...]
    source: str  # where it was read from, for reports

    def __len__(self) -> int:
        return len(self.images)


class DataNotFoundError(DataError, FileNotFoundError):
    """A dataset that is neither in the data folder nor downloadable here (names the files and the way out)."""


class DataDownloadError(DownloadError, DataNotFoundError):
    """A dataset's download failed (offline, server error, wrong checksum): both a DownloadError and not found."""


def check_pair(images: np.ndarray, labels: np.ndarray, path) -> None:
    if images.ndim != 4 or images.dtype != np.uint8:
        raise CorruptFileError(f"{path}: expected uint8 images (N, H, W, C), got {images.dtype} {images.shape}")
    if len(images) != len(labels):
        raise CorruptFileError(f"{path}: {len(images)} images but {len(labels)} labels")
