"""Seeded subsets, epoch orders and batches of numpy datasets."""
from __future__ import annotations

import dataclasses
from typing import Iterator

import numpy as np

from jaxgen.data.dataset import Dataset


def subset(dataset: Dataset, n: int | None, seed: int = 0) -> Dataset:
    """`n` examples drawn at random (seeded), kept in their original order; all of them for None.

    Not a prefix: some distribution files are sorted by class (cifar10.npz), so the first n
    examples could all be airplanes.
    """
    if n is None or n >= len(dataset):
        return dataset
    keep = np.sort(np.random.default_rng(seed).choice(len(dataset), n, replace=False))
    return dataclasses.replace(dataset, images=np.asarray(dataset.images[keep]), labels=dataset.labels[keep])


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
