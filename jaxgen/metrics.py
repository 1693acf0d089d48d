"""Image-quality and likelihood metrics, per image, for float images in [0, data_range]."""
from typing import Callable

import jax
import jax.numpy as jnp

from jaxgen import losses


def _mean_per_image(x):
    return x.reshape(x.shape[0], -1).mean(axis=1)


def mse(a, b):
    return _mean_per_image(jnp.square(a - b))


def mae(a, b):
    return _mean_per_image(jnp.abs(a - b))


def psnr(a, b, data_range: float = 1.0):
    """Peak signal-to-noise ratio in dB, per image (infinite for identical images)."""
    return 10.0 * jnp.log10(data_range ** 2 / mse(a, b))


def _gaussian_window(size: int, sigma: float):
    x = jnp.arange(size, dtype=jnp.float32) - (size - 1) / 2.0
    w = jnp.exp(-0.5 * jnp.square(x / sigma))
    return w / w.sum()


def _valid_filter_matrix(length: int, window):
    """(length - size + 1, length): row i holds the window at offset i, so 'valid' filtering along an axis of
    that length is one matmul."""
    size = window.shape[0]
    offsets = jnp.arange(length)[None, :] - jnp.arange(length - size + 1)[:, None]
    return jnp.where((offsets >= 0) & (offsets < size), window[jnp.clip(offsets, 0, size - 1)], 0.0)


def _filter_valid(images, window):
    """Separable 'valid' Gaussian filtering of NHWC images, channel by channel, as two matmuls: XLA:CPU runs
    the same filter as one-channel convolutions ~20x slower (0.11 s against 6 ms for 500 32x32x3 images)."""
    rows = jnp.einsum("ph,nhwc->npwc", _valid_filter_matrix(images.shape[1], window), images)
    return jnp.einsum("npwc,qw->npqc", rows, _valid_filter_matrix(images.shape[2], window))


def ssim(a, b, data_range: float = 1.0, window_size: int = 11, sigma: float = 1.5,
         k1: float = 0.01, k2: float = 0.03):
    """Structural similarity per image (Wang et al. 2004), Gaussian window, averaged over
    valid positions and channels. Matches scikit-image's structural_similarity with
    gaussian_weights=True, sigma=1.5, use_sample_covariance=False."""
    if a.shape[1] < window_size or a.shape[2] < window_size:
        window_size = min(a.shape[1], a.shape[2]) // 2 * 2 - 1  # small images: largest odd window
    window = _gaussian_window(window_size, sigma)
    mu_a, mu_b = _filter_valid(a, window), _filter_valid(b, window)
    var_a = _filter_valid(a * a, window) - mu_a ** 2
    var_b = _filter_valid(b * b, window) - mu_b ** 2
    cov = _filter_valid(a * b, window) - mu_a * mu_b
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    return _mean_per_image(ssim_map)


def image_scores(reconstructed, targets) -> dict:
    """Per-image MSE, MAE, PSNR and SSIM of images in [0, 1]."""
    return {"mse": mse(reconstructed, targets), "mae": mae(reconstructed, targets),
            "psnr": psnr(reconstructed, targets), "ssim": ssim(reconstructed, targets)}


def neg_elbo_bernoulli(logits, targets, mean, logvar):
    """Negative ELBO in nats per image: Bernoulli NLL summed over pixels plus the analytic KL."""
    return losses.bernoulli_nll(logits, targets) + losses.gaussian_kl(mean, logvar)


def iw_log_likelihood(rng, images, mean, logvar, decode_logits: Callable, num_samples: int):
    """Importance-weighted estimate of log p(x) (Burda et al. 2016) for a Bernoulli-decoder VAE.

    log p(x) ~= logsumexp_k [log p(x|z_k) + log p(z_k) - log q(z_k|x)] - log K,  z_k ~ q(z|x).
    All K samples are decoded in one batch (keep the image batch small). Returns nats per image.
    """
    batch = images.shape[0]
    z = mean + jnp.exp(0.5 * logvar) * jax.random.normal(rng, (num_samples,) + mean.shape)  # (K, B, D)
    logits = decode_logits(z.reshape(num_samples * batch, -1))
    targets = jnp.broadcast_to(images, (num_samples,) + images.shape).reshape(logits.shape)
    log_px_z = -losses.bernoulli_nll(logits, targets).reshape(num_samples, batch)
    log_weights = log_px_z + losses.log_standard_normal(z) - losses.log_normal(z, mean, logvar)
    return jax.scipy.special.logsumexp(log_weights, axis=0) - jnp.log(float(num_samples))


# ------------------------------------------------------------ point-set distances
def _squared_distances(a, b):
    return jnp.sum(jnp.square(a[:, None, :] - b[None, :, :]), axis=-1)


def gaussian_mmd(a, b, bandwidth: float):
    """Squared maximum mean discrepancy between point sets a (N, D) and b (M, D) under the kernel
    exp(-|x - y|^2 / (2 bandwidth^2)); the biased (V-statistic) estimate, >= 0 and 0 for equal sets."""
    def kernel_mean(x, y):
        return jnp.mean(jnp.exp(-_squared_distances(x, y) / (2.0 * bandwidth ** 2)))
    return kernel_mean(a, a) + kernel_mean(b, b) - 2.0 * kernel_mean(a, b)


def chamfer_distance(a, b):
    """Symmetric Chamfer distance: mean nearest-neighbour distance from a to b plus from b to a."""
    distances = jnp.sqrt(_squared_distances(a, b))
    return jnp.mean(distances.min(axis=1)) + jnp.mean(distances.min(axis=0))
