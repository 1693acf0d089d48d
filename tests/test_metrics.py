import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen import losses, metrics


def _images(seed, shape=(3, 32, 32, 3)):
    rng = np.random.default_rng(seed)
    clean = rng.random(shape, dtype=np.float32)
    noisy = np.clip(clean + 0.1 * rng.standard_normal(shape, dtype=np.float32), 0, 1)
    return clean, noisy


def test_mse_mae_psnr_known_values():
    a = np.zeros((1, 4, 4, 1), np.float32)
    b = np.full((1, 4, 4, 1), 0.1, np.float32)
    np.testing.assert_allclose(metrics.mse(a, b), [0.01], rtol=1e-5)
    np.testing.assert_allclose(metrics.mae(a, b), [0.1], rtol=1e-5)
    np.testing.assert_allclose(metrics.psnr(a, b), [20.0], rtol=1e-5)


def test_ssim_matches_scikit_image():
    structural_similarity = pytest.importorskip("skimage.metrics").structural_similarity
    clean, noisy = _images(0)
    ours = np.asarray(metrics.ssim(jnp.asarray(clean), jnp.asarray(noisy)))
    reference = [structural_similarity(c, n, data_range=1.0, channel_axis=-1, gaussian_weights=True, sigma=1.5,
                                       use_sample_covariance=False) for c, n in zip(clean, noisy)]
    np.testing.assert_allclose(ours, reference, atol=1e-4)


@pytest.mark.parametrize("shape", [(2, 32, 32, 3), (1, 13, 20, 1)])
def test_ssim_filter_equals_one_channel_convolutions(shape):
    """The matmul form of SSIM's separable Gaussian filter against the plain one: a 'valid' convolution of
    each channel with the window along H, then along W."""
    images, _ = _images(2, shape)
    window = metrics._gaussian_window(11, 1.5)
    n, h, w, c = shape
    planes = images.transpose(0, 3, 1, 2).reshape(n * c, h, w, 1)
    dims = ("NHWC", "HWIO", "NHWC")
    plain = jax.lax.conv_general_dilated(planes, window.reshape(11, 1, 1, 1), (1, 1), "VALID", dimension_numbers=dims)
    plain = jax.lax.conv_general_dilated(plain, window.reshape(1, 11, 1, 1), (1, 1), "VALID", dimension_numbers=dims)
    plain = plain.reshape(n, c, h - 10, w - 10).transpose(0, 2, 3, 1)
    np.testing.assert_allclose(metrics._filter_valid(jnp.asarray(images), window), plain, rtol=0, atol=1e-6)


def test_ssim_of_identical_images_is_one():
    clean, _ = _images(1, (2, 28, 28, 1))
    np.testing.assert_allclose(metrics.ssim(clean, clean), [1.0, 1.0], atol=1e-5)


def test_iw_log_likelihood_tightens_the_elbo():
    """With a fixed encoder/decoder, the K-sample bound is >= the 1-sample ELBO on average and rises with K."""
    rng = np.random.default_rng(0)
    weight = jnp.asarray(rng.normal(size=(2, 16)), jnp.float32)
    decode = lambda z: (z @ weight).reshape(-1, 4, 4, 1)  # noqa: E731
    x = jnp.asarray(rng.random((3, 4, 4, 1)) > 0.5, jnp.float32)
    mean, logvar = jnp.zeros((3, 2)) + 0.3, jnp.full((3, 2), -1.0)
    key = jax.random.key(1)
    elbo = np.mean([
        -metrics.neg_elbo_bernoulli(decode(mean + jnp.exp(0.5 * logvar) * jax.random.normal(k, mean.shape)),
                                    x, mean, logvar) for k in jax.random.split(key, 2000)], axis=0)
    iw = lambda k, n: metrics.iw_log_likelihood(k, x, mean, logvar, decode, n)  # noqa: E731
    assert iw(key, 10).shape == (3,)
    iw_10 = jax.vmap(lambda k: iw(k, 10))(jax.random.split(key, 300)).mean(0)
    iw_5000 = iw(key, 5000)
    # E[L_1] <= E[L_10] <= L_inf = log p(x)
    assert np.all(iw_10 > elbo + 0.05) and np.all(iw_5000 > iw_10 - 0.02)


def test_iw_is_exact_when_q_is_the_posterior():
    """If q(z|x) equals p(z) and the decoder ignores z, every weight is p(x): the estimate is exact."""
    x = jnp.ones((2, 2, 2, 1))
    decode = lambda z: jnp.zeros((z.shape[0], 2, 2, 1))  # noqa: E731  p(x|z) = 0.5 per pixel
    estimate = metrics.iw_log_likelihood(jax.random.key(0), x, jnp.zeros((2, 3)), jnp.zeros((2, 3)), decode, 7)
    np.testing.assert_allclose(estimate, [4 * np.log(0.5)] * 2, rtol=1e-5)
    assert losses.bernoulli_nll(decode(jnp.zeros((1, 3))), x[:1])[0] == pytest.approx(-4 * np.log(0.5), rel=1e-5)
