"""Per-example training objectives: `fn(params, batch, rng) -> {'loss': (B,), term: (B,), ...}`.

During training, batch['step'] holds the optimizer step (for schedules such as KL warm-up).

The train loop minimises the batch mean of 'loss' and logs the mean of every term, so each
study's history holds every loss term, train and test.
"""
from functools import cache

import jax
import jax.numpy as jnp

from jaxgen import losses, train
from jaxgen.uniformity import sliced_wasserstein_to_uniform
from jaxgen.data import add_gaussian_noise, patch_mask, to_float_jax


# Objective factories are cached: equal arguments give the same function, so its compiled programs are reused
# (a study's evaluation after training, a benchmark's second workload on one model).
@cache
def vae_objective(model, recon: str = "bce", beta: float = 1.0, kl_warmup_steps: int = 0):
    """Negative ELBO (reconstruction + beta * KL) in nats per image.

    With `kl_warmup_steps`, training ramps the KL weight linearly from 0 to beta over that many
    steps (the train loop passes batch['step']); evaluation, which has no step, uses beta.
    """
    recon_fn = {"bce": losses.bernoulli_nll,
                "mse": lambda logits, x: losses.squared_error(jax.nn.sigmoid(logits), x)}[recon]

    def objective(params, batch, rng):
        x = to_float_jax(batch["image"])
        logits, mean, logvar = model.apply(params, x, rng)
        recon_term = recon_fn(logits, x)
        kl = losses.gaussian_kl(mean, logvar)
        weight = beta
        if kl_warmup_steps and "step" in batch:
            weight = beta * jnp.minimum(1.0, batch["step"] / kl_warmup_steps)
        return {"loss": recon_term + weight * kl, "recon": recon_term, "kl": kl}

    return objective


@cache
def classifier_objective(model):
    def objective(params, batch, rng):
        logits = model.apply(params, to_float_jax(batch["image"]))
        correct = (logits.argmax(-1) == batch["label"]).astype(logits.dtype)
        return {"loss": losses.softmax_cross_entropy(logits, batch["label"]), "accuracy": correct}

    return objective


def bounded_ae_objective(model, uniformity_weight: float = 0.0, num_projections: int = 64,
                         reconstruction: str = "squared"):
    """Reconstruction error per image, plus (when weighted) the sliced Wasserstein distance of the
    batch's codes to Uniform[0, 1]^d, a batch-level term shared by its examples. `reconstruction` is
    "squared" (|D(E(x)) - x|^2) or "norm" (|D(E(x)) - x|, the prior's energy itself, as the image prior
    assignment writes its loss). The weight is a `train.Tunable` setting: the unweighted and weighted
    AEs share compiled programs."""
    if reconstruction not in ("squared", "norm"):
        raise ValueError(f"reconstruction must be 'squared' or 'norm', not {reconstruction!r}")
    return train.Tunable(_bounded_ae_loss(model, num_projections, reconstruction),
                         {"uniformity_weight": uniformity_weight})


@cache
def _bounded_ae_loss(model, num_projections: int, reconstruction: str = "squared"):
    def objective(params, batch, rng, settings):
        x = to_float_jax(batch["image"])
        logits, code = model.apply(params, x)
        recon = losses.squared_error(jax.nn.sigmoid(logits), x)  # logged as the SSE whichever term is trained
        trained = jnp.sqrt(recon + 1e-12) if reconstruction == "norm" else recon
        uniformity = jnp.full_like(recon, sliced_wasserstein_to_uniform(rng, code, num_projections))
        return {"loss": trained + settings["uniformity_weight"] * uniformity, "recon": recon, "uniformity": uniformity}

    return objective


def autoencoder_objective(model, noise_sigma: float = 0.0, mask_ratio: float = 0.0, mask_patch: int = 2):
    """Mean squared error per pixel between the clean image and the reconstruction of its corrupted
    version: Gaussian noise of std `noise_sigma` on the input, clipped to [0, 1] (denoising AE), and/or
    `mask_ratio` of the first stage's feature-map patches zeroed (masked conv AE). The two levels are
    settings of a `train.Tunable`: AEs corrupted the same way at other levels share compiled programs."""
    return train.Tunable(_autoencoder_loss(model, bool(noise_sigma), bool(mask_ratio), mask_patch),
                         {"noise_sigma": noise_sigma, "mask_ratio": mask_ratio})


@cache
def _autoencoder_loss(model, noised: bool, masked: bool, mask_patch: int):
    def objective(params, batch, rng, settings):
        x = to_float_jax(batch["image"])
        noise_rng, mask_rng = jax.random.split(rng)
        inputs = add_gaussian_noise(noise_rng, x, settings["noise_sigma"]) if noised else x
        mask = None
        if masked:
            # The first stage is a stride-2 conv: its feature maps are half the image's size.
            mask = patch_mask(mask_rng, x.shape[0], x.shape[1] // 2, x.shape[2] // 2, mask_patch,
                              settings["mask_ratio"])
        logits, _ = model.apply(params, inputs, mask)
        return {"loss": jnp.mean((jax.nn.sigmoid(logits) - x) ** 2, axis=(1, 2, 3))}

    return objective
