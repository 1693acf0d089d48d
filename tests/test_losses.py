import chex
import jax
import jax.numpy as jnp
import numpy as np

from jaxgen import losses


def test_gaussian_kl_matches_monte_carlo():
    mean = jnp.array([[0.5, -1.0, 2.0]])
    logvar = jnp.array([[0.2, -0.7, 0.0]])
    z = mean + jnp.exp(0.5 * logvar) * jax.random.normal(jax.random.key(0), (200_000, 3))
    monte_carlo = jnp.mean(losses.log_normal(z, mean, logvar) - losses.log_standard_normal(z))
    analytic = losses.gaussian_kl(mean, logvar)
    chex.assert_shape(analytic, (1,))
    np.testing.assert_allclose(analytic[0], monte_carlo, rtol=1e-2)
    np.testing.assert_allclose(analytic[0], 0.5 * np.sum(np.exp(logvar) + mean ** 2 - 1 - logvar), rtol=1e-6)


def test_kl_is_zero_only_at_the_prior():
    assert float(losses.gaussian_kl(jnp.zeros((1, 4)), jnp.zeros((1, 4)))[0]) == 0.0
    assert float(losses.gaussian_kl(jnp.full((1, 4), 0.1), jnp.zeros((1, 4)))[0]) > 0.0


def test_bernoulli_nll_hand_case():
    # p = sigmoid(0) = 0.5 for every pixel: -log 0.5 per pixel whatever the target.
    logits = jnp.zeros((2, 2, 2, 1))
    targets = jnp.array([0.0, 1.0, 0.3, 1.0, 0.0, 0.0, 1.0, 0.5]).reshape(2, 2, 2, 1)
    np.testing.assert_allclose(losses.bernoulli_nll(logits, targets), [4 * np.log(2)] * 2, rtol=1e-6)
    # A hand-computed case: logit log(3) -> p = 0.75; target 1 costs -log .75, target 0 costs -log .25.
    logits = jnp.full((1, 2), np.log(3.0))
    np.testing.assert_allclose(losses.bernoulli_nll(logits, jnp.array([[1.0, 0.0]])),
                               [-np.log(0.75) - np.log(0.25)], rtol=1e-6)


def test_bernoulli_nll_is_stable_for_large_logits():
    value = losses.bernoulli_nll(jnp.array([[100.0, -100.0]]), jnp.array([[1.0, 0.0]]))
    assert np.isfinite(value).all() and float(value[0]) < 1e-30


def test_log_normal_integrates_to_known_density():
    np.testing.assert_allclose(losses.log_standard_normal(jnp.zeros((1, 2))), [-np.log(2 * np.pi)], rtol=1e-6)


def test_softmax_cross_entropy():
    logits = jnp.log(jnp.array([[0.2, 0.8], [0.5, 0.5]]))
    np.testing.assert_allclose(losses.softmax_cross_entropy(logits, jnp.array([1, 0])),
                               [-np.log(0.8), -np.log(0.5)], rtol=1e-6)
