"""How close a generator's 2-D samples are to the data, next to the data's own floor.

A distance between samples and the very points they are compared with has no zero to read it
against: the data compared with a bootstrap of itself shares its points (Chamfer ~ 0 by construction).
So the data are split at random into two disjoint halves: half A is the reference, half B is what a
perfect sampler of the data's distribution would give (fresh draws, not A's points), and the model
is scored on as many fresh samples as B holds, against the same A. Averaged over many splits, each
with its own chunk of samples, the model's number and the floor are computed in exactly the same way
(same sizes, same estimator bias), so "at the floor" means "as close as held-out data".
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen import metrics


def _distances(a, b, bandwidth: float):
    return jnp.stack([metrics.gaussian_mmd(a, b, bandwidth), metrics.chamfer_distance(a, b)])


_batched_distances = jax.jit(jax.vmap(_distances, in_axes=(0, 0, None)), static_argnums=2)


def split_half_splits(num_points: int, num_splits: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(reference, held_out) index arrays (num_splits, n // 2) and (num_splits, n - n // 2): disjoint halves."""
    rng = np.random.default_rng(seed)
    orders = np.stack([rng.permutation(num_points) for _ in range(num_splits)])
    half = num_points // 2
    return orders[:, :half], orders[:, half:]


def distances_to_held_out_half(samples, data, bandwidth: float, seed: int = 0) -> dict:
    """MMD^2 (Gaussian kernel of `bandwidth`) and symmetric Chamfer distance of `samples` (S, 2) to random
    halves of `data` (N, 2), with the data's floor: the other half against the same reference half.

    One split per chunk of N - N // 2 samples (S // (N - N // 2) splits); returns
    {"model": {"mmd", "mmd_std", "chamfer", "chamfer_std"}, "floor": {... the same ...}, "splits", "half_size"}.
    """
    samples, data = np.asarray(samples, np.float32), np.asarray(data, np.float32)
    held_out_size = len(data) - len(data) // 2
    num_splits = len(samples) // held_out_size
    if num_splits < 2:
        raise ValueError(f"{len(samples)} samples make fewer than two chunks of {held_out_size}: draw more samples")
    reference, held_out = split_half_splits(len(data), num_splits, seed)
    chunks = samples[:num_splits * held_out_size].reshape(num_splits, held_out_size, -1)
    model = np.asarray(_batched_distances(jnp.asarray(chunks), jnp.asarray(data[reference]), bandwidth))
    floor = np.asarray(_batched_distances(jnp.asarray(data[held_out]), jnp.asarray(data[reference]), bandwidth))

    def summary(values):
        return {"mmd": float(values[:, 0].mean()), "mmd_std": float(values[:, 0].std()),
                "chamfer": float(values[:, 1].mean()), "chamfer_std": float(values[:, 1].std())}

    return {"model": summary(model), "floor": summary(floor), "splits": num_splits, "half_size": held_out_size}
