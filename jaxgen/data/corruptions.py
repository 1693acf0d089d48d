"""Input corruptions applied inside jitted code: Gaussian noise and patch masks."""
from __future__ import annotations


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
