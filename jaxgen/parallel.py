"""Data parallelism written out inside `jax.shard_map`, for programs that keep a whole training run in one
compiled loop (the dino DDPM study): each device's slice of a batch, and sums over the devices."""
from __future__ import annotations

import jax
from jax.flatten_util import ravel_pytree


def local_slice(x, axis_name: str, axis: int = 0):
    """This device's slice of `x`, which every device holds whole, along `axis` (its length divisible by
    the number of devices on `axis_name`): device i takes the i-th of equal consecutive slices."""
    size = x.shape[axis] // jax.lax.axis_size(axis_name)
    return jax.lax.dynamic_slice_in_dim(x, jax.lax.axis_index(axis_name) * size, size, axis)


def per_device(tree, axis_name: str):
    """`tree`, which every device holds the same, typed as varying over `axis_name`, so that a gradient
    taken with respect to it is each device's own. (Taken with respect to the replicated tree itself,
    shard_map's autodiff sums it over the devices, one all-reduce per array.)"""
    if hasattr(jax.lax, "pcast"):
        return jax.lax.pcast(tree, axis_name, to="varying")
    return jax.lax.pvary(tree, axis_name)  # its name before jax 0.8.2


def sum_over_devices(tree, axis_name: str):
    """`jax.lax.psum(tree, axis_name)` as one all-reduce of all the tree's numbers raveled into one vector
    (one dtype). XLA:CPU pays each all-reduce's fixed cost, two hand-offs between the devices' threads,
    once per array it sums: the dino run's gradients, nine arrays, ran ~2.6x slower summed array by array
    (benchmarks/NOTES.md)."""
    flat, unravel = ravel_pytree(tree)
    return unravel(jax.lax.psum(flat, axis_name))
