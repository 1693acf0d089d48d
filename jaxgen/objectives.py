"""Per-example training objectives: `fn(params, batch, rng) -> {'loss': (B,), term: (B,), ...}`.

The train loop minimises the batch mean of 'loss' and logs the mean of every term, so each
study's history holds every loss term, train and test.
"""
import jax

from jaxgen import losses
from jaxgen.data import to_float_jax


def vae_objective(model, recon: str = "bce", beta: float = 1.0):
    """Negative ELBO (reconstruction + beta * KL) in nats per image."""
    recon_fn = {"bce": losses.bernoulli_nll,
                "mse": lambda logits, x: losses.squared_error(jax.nn.sigmoid(logits), x)}[recon]

    def objective(params, batch, rng):
        x = to_float_jax(batch["image"])
        logits, mean, logvar = model.apply(params, x, rng)
        recon_term = recon_fn(logits, x)
        kl = losses.gaussian_kl(mean, logvar)
        return {"loss": recon_term + beta * kl, "recon": recon_term, "kl": kl}

    return objective


def classifier_objective(model):
    def objective(params, batch, rng):
        logits = model.apply(params, to_float_jax(batch["image"]))
        correct = (logits.argmax(-1) == batch["label"]).astype(logits.dtype)
        return {"loss": losses.softmax_cross_entropy(logits, batch["label"]), "accuracy": correct}

    return objective
