"""Using a trained VAE: latent means, decoded pixels, and test-set reconstruction scores.

Works with every VAE in `jaxgen.models.autoencoders` (`encode -> (mean, logvar)`, `decode -> logits`).
"""
from __future__ import annotations

import jax
import numpy as np

from jaxgen import data, latent, metrics, objectives, train


def encode_images(model, params, images, batch_size: int = 500, output: int | None = None) -> np.ndarray:
    """(N, D) codes `model.encode(x)` of uint8 or float images, in batches, for any autoencoder;
    `output` picks one element where encode returns a tuple (a VAE's (mean, logvar))."""
    def per_batch(batch, _):
        codes = model.apply(params, data.to_float_jax(batch["image"]), method=model.encode)
        return codes if output is None else codes[output]
    return train.batched_apply(per_batch, {"image": images}, batch_size)


def encode_means(model, params, images, batch_size: int = 500) -> np.ndarray:
    """(N, D) posterior means of uint8 or float images."""
    return encode_images(model, params, images, batch_size, output=0)


def decode_pixels(model, params, z) -> np.ndarray:
    """Images in [0, 1] decoded from latents z (N, D)."""
    return np.asarray(jax.nn.sigmoid(jax.jit(lambda p, z: model.apply(p, z, method=model.decode))(params, z)))


def reconstruct(model, params, images) -> np.ndarray:
    """The mean reconstructions sigmoid(D(mu(x))) of uint8 images, in [0, 1]."""
    return decode_pixels(model, params, encode_means(model, params, images))


def reconstruction_metrics(model, params, images, seed: int, batch_size: int = 500, recon: str = "bce",
                           beta: float = 1.0) -> dict[str, float]:
    """Test metrics of the mean reconstruction sigmoid(D(mu(x))), plus the objective's terms
    (negative ELBO, reconstruction, KL) with one posterior sample per image."""
    def per_batch(batch, _):
        x = data.to_float_jax(batch["image"])
        mean, _ = model.apply(params, x, method=model.encode)
        return metrics.image_scores(jax.nn.sigmoid(model.apply(params, mean, method=model.decode)), x)
    per_image = train.batched_apply(per_batch, {"image": images}, batch_size)
    scores = {k: float(np.mean(v)) for k, v in per_image.items()}
    terms = train.evaluate(objectives.vae_objective(model, recon, beta), params, images,
                           np.zeros(len(images), np.int64), batch_size, seed)
    scores.update(neg_elbo=terms["loss"], recon=terms["recon"], kl=terms["kl"])
    return scores


def decode_style_transfer(model, params, z_a, z_b, class_mean_b, strengths) -> np.ndarray:
    """(2, S, H, W, C): decoded z_a + s (z_b - class_mean_b) (row 0) and z_a + s (z_b - z_a) (row 1)
    for each strength s."""
    return np.stack([decode_pixels(model, params, latent.transfer_class_offset(z_a, z_b, class_mean_b, strengths)),
                     decode_pixels(model, params, latent.move_towards(z_a, z_b, strengths))])
