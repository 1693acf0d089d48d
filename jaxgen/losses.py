"""Per-example loss terms. Each returns one value per batch item, summed over its pixels or
latent dimensions, so that averages over a dataset are exact whatever the batch split."""
import math

import jax
import jax.numpy as jnp

# A Python float, not a jnp value: computing one at import would start JAX's backend before a program
# could set it up (jaxgen.cpu). Equal to float32(jnp.log(2 pi)).
LOG_2PI = math.log(2.0 * math.pi)


def _sum_per_example(x):
    return x.reshape(x.shape[0], -1).sum(axis=1)


def bernoulli_nll(logits, targets):
    """-log Bernoulli(targets | sigmoid(logits)), summed per example; targets may be grey levels in [0, 1]."""
    # softplus(l) - t*l is the numerically stable form of -(t log p + (1-t) log(1-p)).
    return _sum_per_example(jax.nn.softplus(logits) - targets * logits)


def squared_error(predictions, targets):
    """Sum of squared errors per example (a Gaussian NLL up to scale and a constant)."""
    return _sum_per_example(jnp.square(predictions - targets))


def gaussian_kl(mean, logvar):
    """KL( N(mean, exp(logvar)) || N(0, I) ), analytic, summed over latent dimensions."""
    return 0.5 * jnp.sum(jnp.exp(logvar) + jnp.square(mean) - 1.0 - logvar, axis=-1)


def log_normal(z, mean, logvar):
    """log N(z | mean, diag exp(logvar)), summed over the last axis."""
    return -0.5 * jnp.sum(LOG_2PI + logvar + jnp.square(z - mean) * jnp.exp(-logvar), axis=-1)


def log_standard_normal(z):
    return -0.5 * jnp.sum(LOG_2PI + jnp.square(z), axis=-1)


def softmax_cross_entropy(logits, labels):
    """Per-example cross-entropy with integer labels."""
    return -jnp.take_along_axis(jax.nn.log_softmax(logits), labels[:, None], axis=-1)[:, 0]
