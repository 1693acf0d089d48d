"""Image restoration with an autoencoder prior P(x) ~ exp(-E(x) / T), E(x) = |D(E(x)) - x|_2.

We minimise the negative log posterior over the image itself (not over the code), with Adam and
a projection back onto [0, 1] after each step:

    -log P(x | y) = |m * (x - y)|^2 / (2 s^2) + |D(E(x)) - x| / T + const,

where y is the observation, s the noise level and m a 0/1 mask of the observed pixels (all ones
for denoising). As T -> infinity the prior vanishes and the minimiser is y itself on the observed
pixels; as T -> 0 it is a fixed point of the autoencoder.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax


def prior_energy(model, params, x):
    """Per-image |sigmoid(D(E(x))) - x|_2 for images x (B, H, W, C) in [0, 1]."""
    logits, _ = model.apply(params, x)
    residual = jax.nn.sigmoid(logits) - x
    return jnp.sqrt(jnp.sum(residual ** 2, axis=(1, 2, 3)) + 1e-12)


def negative_log_posterior(model, params, x, y, mask, noise_sigma: float, temperature: float):
    """Per-image -log P(x | y) up to a constant; temperature = inf drops the prior."""
    return _negative_log_posterior(model, params, x, y, mask, noise_sigma, _prior_weight(temperature))


def _prior_weight(temperature: float) -> float:
    return 0.0 if np.isinf(temperature) else 1.0 / temperature


def _negative_log_posterior(model, params, x, y, mask, noise_sigma, prior_weight):
    data_term = 0.5 * jnp.sum(mask * (x - y) ** 2, axis=(1, 2, 3)) / noise_sigma ** 2
    return data_term + prior_weight * prior_energy(model, params, x)


@functools.lru_cache(maxsize=None)
def _adam(learning_rate: float):
    return optax.adam(learning_rate)


@functools.partial(jax.jit, static_argnames=("model", "optimizer"))
def _restore_step(model, optimizer, params, x, opt_state, y, mask, noise_sigma, prior_weight):
    def total(x):
        return jnp.sum(_negative_log_posterior(model, params, x, y, mask, noise_sigma, prior_weight))
    value, grad = jax.value_and_grad(total)(x)
    updates, opt_state = optimizer.update(grad, opt_state, x)
    return jnp.clip(optax.apply_updates(x, updates), 0.0, 1.0), opt_state, value


def restore(model, params, y, mask, noise_sigma: float, temperature: float, steps: int = 300,
            learning_rate: float = 0.01):
    """(x, objective per step and image): x minimises the negative log posterior, starting from y.
    One compiled step serves every temperature, noise level and mask of the same shape."""
    optimizer = _adam(learning_rate)
    x = jnp.asarray(y, jnp.float32)
    opt_state = optimizer.init(x)
    arguments = (jnp.asarray(y, jnp.float32), jnp.asarray(mask, jnp.float32), jnp.float32(noise_sigma),
                 jnp.float32(_prior_weight(temperature)))
    values = []
    for _ in range(steps):
        x, opt_state, value = _restore_step(model, optimizer, params, x, opt_state, *arguments)
        values.append(value)
    return np.asarray(x), np.asarray(jax.device_get(values)) / len(y)


def central_block_mask(shape, block: int):
    """(H, W, 1) 0/1 mask that removes (zeros) a centred block x block square."""
    height, width = shape[0], shape[1]
    mask = np.ones((height, width, 1), np.float32)
    top, left = (height - block) // 2, (width - block) // 2
    mask[top:top + block, left:left + block] = 0.0
    return mask


def sweep_temperature(score, temperatures, key: str = "psnr", widen_by: float = 10.0, max_widenings: int = 4):
    """Score every temperature of `temperatures` (`score(T) -> dict` holding `key`, higher is better), and
    while the best one is the smallest or largest scored, score one more a factor `widen_by` beyond it,
    at most `max_widenings` times: the optimum ends inside the swept range unless the limit is reached.
    Returns (rows sorted by temperature, best row, whether the best is inside the range)."""
    rows = {float(t): score(float(t)) for t in temperatures}
    for _ in range(max_widenings):
        ordered = sorted(rows)
        best = max(ordered, key=lambda t: rows[t][key])
        if best == ordered[0]:
            extra = best / widen_by
        elif best == ordered[-1]:
            extra = best * widen_by
        else:
            break
        rows[extra] = score(extra)
    ordered = sorted(rows)
    best = max(ordered, key=lambda t: rows[t][key])
    inside = ordered[0] < best < ordered[-1]
    return [rows[t] for t in ordered], rows[best], inside
