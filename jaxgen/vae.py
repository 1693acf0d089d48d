"""Using a trained VAE: latent means, decoded pixels, and test-set reconstruction scores.

Works with every VAE in `jaxgen.models.autoencoders` (`encode -> (mean, logvar)`, `decode -> logits`).
Parameters enter the compiled programs as inputs, so models of one architecture (Flax modules compare by
their fields) share them.
"""
from __future__ import annotations

from functools import cache, partial

import jax
import numpy as np

from jaxgen import data, latent, metrics, objectives, train


def encode_images(model, params, images, batch_size: int = 500, output: int | None = None) -> np.ndarray:
    """(N, D) codes `model.encode(x)` of uint8 or float images, in batches, for any autoencoder;
    `output` picks one element where encode returns a tuple (a VAE's (mean, logvar))."""
    return train.batched_apply(_encoding(model, output), {"image": images}, batch_size, operands=(params,))


@cache
def _encoding(model, output: int | None):
    def per_batch(batch, _, params):
        codes = model.apply(params, data.to_float_jax(batch["image"]), method=model.encode)
        return codes if output is None else codes[output]
    return per_batch


def encode_means(model, params, images, batch_size: int = 500) -> np.ndarray:
    """(N, D) posterior means of uint8 or float images."""
    return encode_images(model, params, images, batch_size, output=0)


def decode_pixels(model, params, z) -> np.ndarray:
    """Images in [0, 1] decoded from latents z (N, D)."""
    return np.asarray(_decoded_pixels(model, params, z))


@partial(jax.jit, static_argnums=0)
def _decoded_pixels(model, params, z):
    return jax.nn.sigmoid(model.apply(params, z, method=model.decode))


def reconstruct(model, params, images) -> np.ndarray:
    """The mean reconstructions sigmoid(D(mu(x))) of uint8 images, in [0, 1]."""
    return decode_pixels(model, params, encode_means(model, params, images))


def reconstruction_metrics(model, params, images, seed: int, batch_size: int = 500, recon: str = "bce",
                           beta: float = 1.0) -> dict[str, float]:
    """Test metrics of the mean reconstruction sigmoid(D(mu(x))), plus the objective's terms
    (negative ELBO, reconstruction, KL) with one posterior sample per image."""
    per_image = train.batched_apply(_mean_reconstruction_scores(model), {"image": images}, batch_size,
                                    operands=(params,))
    scores = {k: float(np.mean(v)) for k, v in per_image.items()}
    terms = train.evaluate(objectives.vae_objective(model, recon, beta), params, images,
                           np.zeros(len(images), np.int64), batch_size, seed)
    scores.update(neg_elbo=terms["loss"], recon=terms["recon"], kl=terms["kl"])
    return scores


def mean_pixels(model, params, x):
    """sigmoid(D(mu(x))): the reconstruction of float images from their posterior means (jittable)."""
    mean, _ = model.apply(params, x, method=model.encode)
    return _decoded_pixels(model, params, mean)


@cache
def _mean_reconstruction_scores(model):
    def per_batch(batch, _, params):
        x = data.to_float_jax(batch["image"])
        return metrics.image_scores(mean_pixels(model, params, x), x)
    return per_batch


def decode_style_transfer(model, params, z_a, z_b, class_mean_b, strengths) -> np.ndarray:
    """(2, S, H, W, C): decoded z_a + s (z_b - class_mean_b) (row 0) and z_a + s (z_b - z_a) (row 1)
    for each strength s."""
    return np.stack([decode_pixels(model, params, latent.transfer_class_offset(z_a, z_b, class_mean_b, strengths)),
                     decode_pixels(model, params, latent.move_towards(z_a, z_b, strengths))])
