"""Scoring autoencoders: reconstruction metrics on clean and noised inputs, occlusion sensitivity,
and the error inside versus outside masked feature-map patches.

`reconstruct(params, x) -> pixels` (and `reconstruct(params, x, feature_mask)` for masking) is any jittable
function of float NHWC images in [0, 1]; images passed in are uint8 or float arrays. `params` enter the
compiled programs as inputs, not as constants, so scoring several models with one `reconstruct` (one
architecture, many trainings) compiles each program once.
"""
from __future__ import annotations

from functools import cache
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen import metrics, train
from jaxgen.data import add_gaussian_noise, patch_mask, to_float_jax


def _noise_key(seed: int, sigma: float):
    # The same noise for every model scored with the same seed and sigma.
    return jax.random.fold_in(jax.random.key(seed), int(round(sigma * 1000)))


def _noised(x, key, index, sigma: float):
    return add_gaussian_noise(jax.random.fold_in(key, index), x, sigma) if sigma else x


def noised_images(images, sigma: float, seed: int = 0, batch_size: int = 500) -> np.ndarray:
    """Float images with N(0, sigma^2) noise, clipped to [0, 1]: exactly the inputs that
    `reconstruction_scores` feeds the models for the same sigma, seed and batch size."""
    return train.batched_apply(_noising(sigma), {"image": images}, batch_size, operands=(_noise_key(seed, sigma),))


@cache
def _noising(sigma: float):
    return lambda batch, index, key: _noised(to_float_jax(batch["image"]), key, index, sigma)


def reconstruction_scores(reconstruct, params, images, noise_sigmas: Sequence[float] = (0.0,), seed: int = 0,
                          batch_size: int = 500) -> dict[float, dict[str, float]]:
    """{sigma: mean MSE, MAE, PSNR and SSIM of reconstruct(params, input) against the clean images}, where the
    input is the image with Gaussian noise of std sigma, clipped to [0, 1] (sigma 0: clean)."""
    keys = [_noise_key(seed, sigma) for sigma in noise_sigmas]
    per_image = train.batched_apply(_scoring(reconstruct, tuple(noise_sigmas)), {"image": images}, batch_size,
                                    operands=(keys, params))
    return {sigma: {name: float(np.mean(values)) for name, values in scores.items()}
            for sigma, scores in zip(noise_sigmas, per_image)}


@cache
def _scoring(reconstruct, noise_sigmas: tuple[float, ...]):
    def per_batch(batch, index, keys, params):
        x = to_float_jax(batch["image"])
        return [metrics.image_scores(reconstruct(params, _noised(x, key, index, sigma)), x)
                for key, sigma in zip(keys, noise_sigmas)]
    return per_batch


def occlusion_sensitivity(reconstruct, params, images, size: int = 8, stride: int = 4,
                          fill: float = 0.5) -> np.ndarray:
    """(N, H, W) maps: how much the reconstruction's MSE against the clean image rises when a
    size x size grey window covers each pixel, averaged over the windows covering it."""
    x = to_float_jax(images)
    height, width = x.shape[1:3]
    corners = tuple((top, left) for top in range(0, height - size + 1, stride)
                    for left in range(0, width - size + 1, stride))
    per_window = np.asarray(_occlusion_rises(reconstruct, corners, size, fill)(params, x))
    rise, counts = np.zeros((len(x), height, width)), np.zeros((height, width))
    for k, (top, left) in enumerate(corners):
        rise[:, top:top + size, left:left + size] += per_window[:, k, None, None]
        counts[top:top + size, left:left + size] += 1
    return rise / np.maximum(counts, 1)


@cache
def _occlusion_rises(reconstruct, corners, size, fill):
    def rises(params, image):
        occluded = jnp.stack([image] + [image.at[top:top + size, left:left + size].set(fill) for top, left in corners])
        errors = metrics.mse(reconstruct(params, occluded), jnp.broadcast_to(image, occluded.shape))
        return errors[1:] - errors[0]
    return jax.jit(jax.vmap(rises, in_axes=(None, 0)))


def masked_region_errors(reconstruct, params, images, ratios: Sequence[float], patch: int, seed: int = 0,
                         batch_size: int = 500) -> dict[float, dict[str, float]]:
    """{ratio: mean squared error of reconstruct(params, x, feature_mask) inside and outside the image regions
    under the masked first-stage feature patches, and with no mask}. The first stage is a stride-2
    conv, so feature cell (i, j) sits over pixels (2i..2i+1, 2j..2j+1)."""
    keys = [jax.random.fold_in(jax.random.key(seed), int(round(ratio * 1000))) for ratio in ratios]
    per_image = train.batched_apply(_masked_errors(reconstruct, tuple(ratios), patch), {"image": images}, batch_size,
                                    operands=(keys, params))
    return {ratio: {name: float(np.mean(values)) for name, values in result.items()}
            for ratio, result in zip(ratios, per_image)}


@cache
def _masked_errors(reconstruct, ratios: tuple[float, ...], patch: int):
    def errors(params, x, index, key, ratio):
        mask = patch_mask(jax.random.fold_in(key, index), x.shape[0], x.shape[1] // 2, x.shape[2] // 2, patch, ratio)
        kept = jnp.repeat(jnp.repeat(mask, 2, axis=1), 2, axis=2)
        hidden = 1.0 - kept
        error = jnp.mean(jnp.square(reconstruct(params, x, mask) - x), axis=-1, keepdims=True)
        return {"masked_mse": jnp.sum(error * hidden, (1, 2, 3)) / jnp.maximum(jnp.sum(hidden, (1, 2, 3)), 1),
                "unmasked_mse": jnp.sum(error * kept, (1, 2, 3)) / jnp.maximum(jnp.sum(kept, (1, 2, 3)), 1)}

    def per_batch(batch, index, keys, params):
        x = to_float_jax(batch["image"])
        unmasked = jnp.mean(jnp.square(reconstruct(params, x, None) - x), (1, 2, 3))
        return [{**errors(params, x, index, key, ratio), "no_mask_mse": unmasked} for key, ratio in zip(keys, ratios)]
    return per_batch
