"""Small synthetic datasets written in the official file layouts, for tests that must not need the real data.

`write_official_files(root)` lays out what a data folder holds after `python -m jaxgen.data download`:
mnist/*.gz (idx), cifar10/cifar-10-python.tar.gz (pickled batches), stl10/stl10_binary.tar.gz (.bin records),
plus stl10/derived/stl10_test_X_first37_unlabeled.npz. The images are class templates plus noise, so a model
can learn something. Their checksums differ from the official ones: `registry_for(root)` gives the table
entries that describe them, to put in `downloads.REGISTRY` for the test.
"""
from __future__ import annotations

import dataclasses
import gzip
import io
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np

from jaxgen.data import downloads

MNIST_SIZES = {"train": 2500, "test": 1200}
CIFAR_BATCH = {"train": 200, "test": 1000}  # images per batch: 5 training batches and one test batch
STL_SIZES = {"train": 20, "test": 16, "unlabeled": 24}


def class_images(rng: np.random.Generator, labels: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """uint8 images: a fixed random template per class (smooth blobs) plus pixel noise."""
    height, width = shape[:2]
    coarse = rng.random((10, height // 4 + 1, width // 4 + 1) + shape[2:])
    templates = np.repeat(np.repeat(coarse, 4, axis=1), 4, axis=2)[:, :height, :width]
    noise = rng.normal(0, 0.15, (len(labels),) + shape)
    return (np.clip(templates[labels] + noise, 0, 1) * 255).astype(np.uint8)


def idx_bytes(array: np.ndarray) -> bytes:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes(), mtime=0)


def write_mnist(folder: Path, seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The four idx .gz files; returns {split: (images (N, 28, 28), labels)}."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        labels = rng.integers(0, 10, MNIST_SIZES[split]).astype(np.uint8)
        images = class_images(rng, labels, (28, 28))
        (folder / f"{prefix}-images-idx3-ubyte.gz").write_bytes(idx_bytes(images))
        (folder / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(idx_bytes(labels))
        written[split] = (images, labels)
    return written


def _add(tar: tarfile.TarFile, name: str, content: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(content)
    tar.addfile(info, io.BytesIO(content))


def write_cifar_archive(path: Path, seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """cifar-10-python.tar.gz with cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta} (protocol-2
    pickles of dicts with bytes keys, as the official Python 2 files); returns {split: (HWC images, labels)}."""
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    parts = {"train": [], "test": []}
    with tarfile.open(path, "w:gz") as tar:
        _add(tar, "cifar-10-batches-py/batches.meta", pickle.dumps({b"label_names": [b"airplane"]}, protocol=2))
        for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
            batch = CIFAR_BATCH["test" if name == "test_batch" else "train"]
            labels = rng.integers(0, 10, batch)
            hwc = class_images(rng, labels, (32, 32, 3))
            content = {b"batch_label": name.encode(), b"labels": labels.tolist(),
                       b"data": hwc.transpose(0, 3, 1, 2).reshape(batch, -1),
                       b"filenames": [f"{name}_{i}.png".encode() for i in range(batch)]}
            _add(tar, f"cifar-10-batches-py/{name}", pickle.dumps(content, protocol=2))
            parts["test" if name == "test_batch" else "train"].append((hwc, labels))
    return {split: (np.concatenate([p[0] for p in ps]), np.concatenate([p[1] for p in ps]))
            for split, ps in parts.items()}


def write_stl10_archive(path: Path, seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    """stl10_binary.tar.gz with stl10_binary/*.bin (column-major 3x96x96 records, labels 1..10) and the text
    files; returns {split: (HWC images, labels 0..9 or None)}."""
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    written = {}
    with tarfile.open(path, "w:gz") as tar:
        _add(tar, "stl10_binary/class_names.txt", "\n".join(("airplane", "bird", "car", "cat", "deer", "dog",
                                                              "horse", "monkey", "ship", "truck")).encode())
        _add(tar, "stl10_binary/fold_indices.txt", b"0 1 2\n")
        for split in ("train", "test", "unlabeled"):
            labels = rng.integers(0, 10, STL_SIZES[split])
            hwc = class_images(rng, labels, (96, 96, 3))
            _add(tar, f"stl10_binary/{split}_X.bin", hwc.transpose(0, 3, 2, 1).tobytes())
            if split != "unlabeled":
                _add(tar, f"stl10_binary/{split}_y.bin", (labels + 1).astype(np.uint8).tobytes())
            written[split] = (hwc, labels if split != "unlabeled" else None)
    return written


def write_first37(path: Path, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    images = class_images(rng, rng.integers(0, 10, 37), (96, 96, 3))
    np.savez(path, x=images)
    return images


def write_official_files(root: Path, seed: int = 0) -> Path:
    """A whole synthetic data folder in the official layouts; returns `root`."""
    write_mnist(root / "mnist", seed)
    write_cifar_archive(root / "cifar10" / "cifar-10-python.tar.gz", seed)
    write_stl10_archive(root / "stl10" / "stl10_binary.tar.gz", seed)
    write_first37(root / "stl10" / "derived" / "stl10_test_X_first37_unlabeled.npz", seed)
    return root


def registry_for(root: Path) -> dict[str, downloads.RemoteFile]:
    """Table entries describing the official-named files under `root` (sizes and hashes of these copies)."""
    entries = {}
    for name, file in downloads.REGISTRY.items():
        path = root / file.dataset / name
        if path.exists():
            entries[name] = downloads.with_checksums(file, path.read_bytes())
    return entries


def serve_as(file: downloads.RemoteFile, urls: tuple[str, ...]) -> downloads.RemoteFile:
    return dataclasses.replace(file, urls=urls)
