"""Adam with global-norm gradient clipping as one fused update, for models small enough that the
optimizer is a visible share of a training step (the dino DDPM's 20,802 parameters: ~14% of a step
with optax's chain on CPU, benchmarks/NOTES.md)."""
from __future__ import annotations

from functools import cache
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax


class ClippedAdamState(NamedTuple):
    count: jax.Array  # steps taken, int32
    mu: Any  # first moments, shaped like the parameters
    nu: Any  # second moments


@cache  # one transformation per setting: it is part of TrainState's tree structure, so states share compiled steps
def clipped_adam(learning_rate: float, max_norm: float, b1: float = 0.9, b2: float = 0.999,
                 eps: float = 1e-8) -> optax.GradientTransformation:
    """`optax.chain(optax.clip_by_global_norm(max_norm), optax.adam(learning_rate, b1, b2, eps))`, equal
    to float rounding (a test compares them over many steps), computed with fewer operations:
    - the global norm is one reduction over all gradients, not one per array;
    - Adam's bias corrections fold into two scalars, mu_hat / (sqrt(nu_hat) + eps) =
      (mu * c2 / c1) / (sqrt(nu) + eps * c2) with c1 = 1 - b1^t and c2 = sqrt(1 - b2^t) (Kingma & Ba
      2015, end of section 2; PyTorch's Adam does the same), so an element costs one square root and
      one division, where optax's chain divides four times (clipping, both corrections, the step).
      Divisions and square roots are the slow part of an elementwise update on CPU."""

    def init(params):
        zeros = lambda tree: jax.tree.map(jnp.zeros_like, tree)
        return ClippedAdamState(jnp.zeros([], jnp.int32), zeros(params), zeros(params))

    def update(grads, state, params=None):
        del params
        leaves = jax.tree.leaves(grads)
        norm = jnp.sqrt(jnp.sum(jnp.square(jnp.concatenate([leaf.ravel() for leaf in leaves]))))
        clip = jnp.where(norm < max_norm, 1.0, max_norm / norm)
        count = optax.safe_int32_increment(state.count)
        t = count.astype(jnp.float32)
        c2 = jnp.sqrt(1.0 - b2 ** t)
        step_size = learning_rate * c2 / (1.0 - b1 ** t)
        grads = jax.tree.map(lambda g: g * clip, grads)
        mu = jax.tree.map(lambda m, g: b1 * m + (1.0 - b1) * g, state.mu, grads)
        nu = jax.tree.map(lambda v, g: b2 * v + (1.0 - b2) * jnp.square(g), state.nu, grads)
        updates = jax.tree.map(lambda m, v: -step_size * m / (jnp.sqrt(v) + eps * c2), mu, nu)
        return updates, ClippedAdamState(count, mu, nu)

    return optax.GradientTransformation(init, update)
