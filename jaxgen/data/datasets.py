"""Datasets as numpy arrays, seeded batching, and input corruptions.

One entry point, `load(name, split)`, returns uint8 NHWC images and int labels.
It reads the original distribution files from a local data folder first
(`data_dir`, else `$JAXGEN_DATA_DIR`) and falls back to TFDS, which downloads
when online. When neither works the error lists the exact files it looked for.
"""
from __future__ import annotations

import csv
import gzip
import os
import pickle
import struct
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

DATA_DIR_ENV = "JAXGEN_DATA_DIR"
SPLITS = ("train", "test")


@dataclass(frozen=True)
class Dataset:
    images: np.ndarray  # uint8, (N, H, W, C)
    labels: np.ndarray  # int64, (N,); -1 where the split is unlabelled
    class_names: tuple[str, ...]
    source: str  # where it was read from, for reports

    def __len__(self) -> int:
        return len(self.images)


class DataNotFoundError(FileNotFoundError):
    """No local copy and no TFDS copy of a dataset could be read."""


MNIST_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")
STL10_CLASSES = ("airplane", "bird", "car", "cat", "deer",
                 "dog", "horse", "monkey", "ship", "truck")
STL10_FILES = {"train": ("train_X.bin", "train_y.bin"),
               "test": ("test_X.bin", "test_y.bin"),
               "unlabeled": ("unlabeled_X.bin", None)}


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path | None:
    """The folder to read from: the argument, else `$JAXGEN_DATA_DIR`, else None."""
    chosen = data_dir or os.environ.get(DATA_DIR_ENV)
    return Path(chosen).expanduser() if chosen else None


# ---------------------------------------------------------------- file formats
def read_idx(path: Path) -> np.ndarray:
    """An MNIST idx file (gzipped or not) as a numpy array."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte idx file (bad magic number)")
    ndim = raw[3]
    shape = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path} is truncated: header says {shape}, found {data.size} bytes")
    return data.reshape(shape)


def _mnist_local(root: Path, split: str) -> Dataset | None:
    for folder in (root / "mnist", root):
        image_file, label_file = (folder / name for name in MNIST_FILES[split])
        if image_file.exists() and label_file.exists():
            images = read_idx(image_file)[..., None]
            labels = read_idx(label_file).astype(np.int64)
            _check_pair(images, labels, image_file)
            return Dataset(images, labels, tuple(str(i) for i in range(10)), str(folder))
    return None


def _cifar10_local(root: Path, split: str) -> Dataset | None:
    for folder in (root / "cifar10", root):
        npz = folder / "cifar10.npz"
        if npz.exists():
            return _npz_split(npz, split, CIFAR10_CLASSES)
        batches = folder / "cifar-10-batches-py"
        names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
        if all((batches / n).exists() for n in names):
            parts = [_read_cifar_pickle(batches / n) for n in names]
            images = np.concatenate([p[0] for p in parts])
            labels = np.concatenate([p[1] for p in parts])
            return Dataset(images, labels, CIFAR10_CLASSES, str(batches))
    return None


def _read_cifar_pickle(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with open(path, "rb") as f:
        batch = pickle.load(f, encoding="bytes")
    data = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
    labels = np.asarray(batch[b"labels"], dtype=np.int64)
    return data.transpose(0, 2, 3, 1), labels


def read_stl10_images(path: Path) -> np.ndarray:
    """STL-10 binary images: column-major 3x96x96 records -> (N, 96, 96, 3)."""
    raw = np.fromfile(path, dtype=np.uint8)
    record = 3 * 96 * 96
    if raw.size % record:
        raise ValueError(f"{path} holds {raw.size} bytes, not a whole number of 96x96x3 images")
    return raw.reshape(-1, 3, 96, 96).transpose(0, 3, 2, 1)


def _stl10_local(root: Path, split: str) -> Dataset | None:
    for folder in (root / "stl10", root):
        npz = folder / "stl10.npz"
        if npz.exists():
            return _npz_split(npz, split, STL10_CLASSES)
        binary = folder / "stl10_binary"
        x_name, y_name = STL10_FILES[split]
        if (binary / x_name).exists() and (y_name is None or (binary / y_name).exists()):
            images = read_stl10_images(binary / x_name)
            if y_name is None:
                labels = np.full(len(images), -1, np.int64)
            else:  # labels on disk are 1..10
                labels = np.fromfile(binary / y_name, dtype=np.uint8).astype(np.int64) - 1
                _check_pair(images, labels, binary / x_name)
            return Dataset(images, labels, STL10_CLASSES, str(binary))
    return None


def _stl10_first37_local(root: Path, split: str) -> Dataset | None:
    """The 37 real STL-10 test images kept in shared/data (no labels)."""
    npz = root / "stl10" / "derived" / "stl10_test_X_first37_unlabeled.npz"
    if not npz.exists():
        return None
    images = np.load(npz)["x"]
    return Dataset(images, np.full(len(images), -1, np.int64), STL10_CLASSES, str(npz))


def _npz_split(path: Path, split: str, default_classes: tuple[str, ...]) -> Dataset:
    with np.load(path, allow_pickle=False) as arrays:
        key = "train" if split == "train" else "test"
        if f"x_{key}" not in arrays:
            raise ValueError(f"{path} has no array x_{key}; expected x_train, y_train, x_test, y_test")
        images = arrays[f"x_{key}"]
        labels = arrays[f"y_{key}"].astype(np.int64)
        classes = tuple(str(c) for c in arrays["class_names"]) if "class_names" in arrays else default_classes
    if images.ndim == 3:
        images = images[..., None]
    _check_pair(images, labels, path)
    return Dataset(np.ascontiguousarray(images, dtype=np.uint8), labels, classes, str(path))


def _check_pair(images: np.ndarray, labels: np.ndarray, path: Path) -> None:
    if images.ndim != 4 or images.dtype != np.uint8:
        raise ValueError(f"{path}: expected uint8 images (N, H, W, C), got {images.dtype} {images.shape}")
    if len(images) != len(labels):
        raise ValueError(f"{path}: {len(images)} images but {len(labels)} labels")


LOCAL_READERS = {"mnist": _mnist_local, "cifar10": _cifar10_local, "stl10": _stl10_local,
                 "stl10_first37": _stl10_first37_local}
EXPECTED_FILES = {
    "mnist": "mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz (the original MNIST files)",
    "cifar10": "cifar10/cifar10.npz (x_train, y_train, x_test, y_test, class_names) "
               "or cifar10/cifar-10-batches-py/{data_batch_1..5,test_batch}",
    "stl10": "stl10/stl10_binary/{train_X,train_y,test_X,test_y,unlabeled_X}.bin "
             "or stl10/stl10.npz (x_train, y_train, x_test, y_test)",
    "stl10_first37": "stl10/derived/stl10_test_X_first37_unlabeled.npz",
}
TFDS_NAMES = {"mnist": "mnist", "cifar10": "cifar10", "stl10": "stl10"}


def load(name: str, split: str = "train", data_dir: str | os.PathLike | None = None,
         allow_download: bool = True) -> Dataset:
    """Images (uint8 NHWC) and labels of `name` ('mnist', 'cifar10', 'stl10', 'stl10_first37')."""
    if name not in LOCAL_READERS:
        raise ValueError(f"unknown dataset {name!r}; choose from {sorted(LOCAL_READERS)}")
    valid_splits = SPLITS + (("unlabeled",) if name == "stl10" else ())
    if split not in valid_splits:
        raise ValueError(f"{name} has splits {valid_splits}, not {split!r}")
    root = resolve_data_dir(data_dir)
    if root is not None:
        found = LOCAL_READERS[name](root, split)
        if found is not None:
            return found
    tfds_error = None
    if allow_download and name in TFDS_NAMES:
        try:
            return _load_tfds(TFDS_NAMES[name], split)
        except Exception as error:  # TFDS raises many kinds; we report them all the same way
            tfds_error = error
    where = str(root) if root else f"nowhere (neither --data-dir nor ${DATA_DIR_ENV} is set)"
    raise DataNotFoundError(
        f"Could not find {name}/{split}. Looked in {where} for {EXPECTED_FILES[name]}"
        + (f"; TFDS fallback failed: {tfds_error}" if tfds_error else "")
        + f". Point --data-dir or ${DATA_DIR_ENV} at a folder holding those files "
        "(in this project: ../shared/data).")


def _load_tfds(tfds_name: str, split: str) -> Dataset:
    """Read a TFDS split through its random-access data source, which needs no TensorFlow."""
    import tensorflow_datasets as tfds

    builder = tfds.builder(tfds_name)
    builder.download_and_prepare()
    source = builder.as_data_source(split=split)
    examples = [source[i] for i in range(len(source))]
    images = np.stack([np.asarray(e["image"], dtype=np.uint8) for e in examples])
    labels = np.array([int(e.get("label", -1)) for e in examples], dtype=np.int64)
    names = tuple(builder.info.features["label"].names) if "label" in builder.info.features else ()
    return Dataset(images, labels, names, f"tfds:{tfds_name}")


# ------------------------------------------------------------------- Datasaurus
def load_datasaurus(dataset: str = "dino", data_dir: str | os.PathLike | None = None) -> np.ndarray:
    """The (x, y) points of one Datasaurus Dozen dataset, float32 (N, 2)."""
    root = resolve_data_dir(data_dir)
    candidates = [root / "datasaurus" / "DatasaurusDozen.tsv", root / "DatasaurusDozen.tsv"] if root else []
    for path in candidates:
        if path.exists():
            with open(path, newline="") as f:
                rows = [r for r in csv.DictReader(f, delimiter="\t") if r["dataset"] == dataset]
            if not rows:
                raise ValueError(f"{path} has no rows for dataset {dataset!r}")
            return np.array([[float(r["x"]), float(r["y"])] for r in rows], dtype=np.float32)
    raise DataNotFoundError(
        f"Could not find DatasaurusDozen.tsv (looked for {[str(c) for c in candidates] or 'nothing'}). "
        f"Point --data-dir or ${DATA_DIR_ENV} at a folder holding datasaurus/DatasaurusDozen.tsv "
        "(in this project: ../shared/data).")


# --------------------------------------------------------------------- batching
def subset(dataset: Dataset, n: int | None, seed: int = 0) -> Dataset:
    """`n` examples drawn at random (seeded), kept in their original order; all of them for None.

    Not a prefix: some distribution files are sorted by class (cifar10.npz), so the first n
    examples could all be airplanes.
    """
    if n is None or n >= len(dataset):
        return dataset
    keep = np.sort(np.random.default_rng(seed).choice(len(dataset), n, replace=False))
    return dataclasses.replace(dataset, images=dataset.images[keep], labels=dataset.labels[keep])


def different_class_pairs(labels: np.ndarray, count: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """`count` random pairs of indices whose labels differ (or just different images when unlabelled, -1)."""
    pairs = []
    for _ in range(count):
        a = int(rng.integers(len(labels)))
        others = np.flatnonzero((labels != labels[a]) if labels[a] >= 0 else (np.arange(len(labels)) != a))
        pairs.append((a, int(rng.choice(others))))
    return pairs


def epoch_permutation(n: int, seed: int, epoch: int) -> np.ndarray:
    """The example order of one epoch: a function of (seed, epoch) only, so resumes replay it."""
    return np.random.default_rng([seed, epoch]).permutation(n)


def batch_indices(n: int, batch_size: int, seed: int | None = None, epoch: int = 0,
                  drop_remainder: bool = True) -> list[np.ndarray]:
    """Index arrays for the batches of one epoch; shuffled when `seed` is given."""
    order = epoch_permutation(n, seed, epoch) if seed is not None else np.arange(n)
    stop = (n // batch_size) * batch_size if drop_remainder else n
    return [order[i:i + batch_size] for i in range(0, stop, batch_size)]


def iterate_batches(images: np.ndarray, labels: np.ndarray, batch_size: int, seed: int | None = None,
                    epoch: int = 0, drop_remainder: bool = True) -> Iterator[dict[str, np.ndarray]]:
    for idx in batch_indices(len(images), batch_size, seed, epoch, drop_remainder):
        yield {"image": images[idx], "label": labels[idx]}


def to_float(images) -> np.ndarray:
    """uint8 [0, 255] -> float32 [0, 1]; float images are taken to be in [0, 1] already."""
    images = np.asarray(images)
    return images.astype(np.float32) / (255.0 if images.dtype == np.uint8 else 1.0)


# ------------------------------------------------------------------ corruptions
def add_gaussian_noise(rng, images, sigma: float, clip: bool = True):
    """images + N(0, sigma^2) for float images in [0, 1]; clipped back to [0, 1] by default."""
    import jax
    import jax.numpy as jnp

    noisy = images + sigma * jax.random.normal(rng, images.shape, images.dtype)
    return jnp.clip(noisy, 0.0, 1.0) if clip else noisy


def patch_mask(rng, batch: int, height: int, width: int, patch: int, ratio: float):
    """A (batch, height, width, 1) 0/1 mask that zeroes round(ratio * patches) whole patches per item.

    Exactly that many of the (height/patch) x (width/patch) patches are masked in every item,
    chosen uniformly without replacement.
    """
    import jax
    import jax.numpy as jnp

    if height % patch or width % patch:
        raise ValueError(f"patch size {patch} does not tile a {height}x{width} map")
    grid_h, grid_w = height // patch, width // patch
    n_patches = grid_h * grid_w
    n_masked = jnp.round(ratio * n_patches)  # a traced ratio works too (train.Tunable settings)
    scores = jax.random.uniform(rng, (batch, n_patches))
    ranks = jnp.argsort(jnp.argsort(scores, axis=1), axis=1)
    keep = (ranks >= n_masked).astype(jnp.float32).reshape(batch, grid_h, grid_w)
    keep = jnp.repeat(jnp.repeat(keep, patch, axis=1), patch, axis=2)
    return keep[..., None]


def to_float_jax(images):
    """uint8 [0, 255] -> float32 [0, 1] inside jitted code (batches travel as uint8); float images
    are taken to be in [0, 1] already."""
    import jax.numpy as jnp

    images = jnp.asarray(images)
    return images.astype(jnp.float32) / (255.0 if images.dtype == jnp.uint8 else 1.0)
