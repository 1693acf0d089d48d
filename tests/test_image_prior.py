import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import image_prior
from experiments.configs.image_prior import get_config
from jaxgen import restoration
from jaxgen.models.autoencoders import BoundedAE
from jaxgen.uniformity import sliced_wasserstein_to_uniform, uniformity_report
from tests.quick_study import assert_report_shows_every_figure, run_quick_study

MODEL = BoundedAE((28, 28, 1), 10, (8, 16))


@pytest.fixture(scope="module")
def params():
    return MODEL.init(jax.random.key(0), jnp.zeros((1, 28, 28, 1)))


def test_codes_are_bounded_by_the_sigmoid(params):
    extreme = jnp.concatenate([jnp.full((2, 28, 28, 1), 1e4), jnp.full((2, 28, 28, 1), -1e4),
                               jax.random.normal(jax.random.key(1), (4, 28, 28, 1))])
    codes = MODEL.apply(params, extreme, method=MODEL.encode)
    assert codes.shape == (8, 10)
    assert float(codes.min()) >= 0.0 and float(codes.max()) <= 1.0


def clustered_codes(n=256, d=10):
    return 0.5 + 0.02 * jax.random.normal(jax.random.key(2), (n, d))


def test_regulariser_prefers_uniform_codes_and_pushes_clusters_apart():
    rng = jax.random.key(3)
    uniform = jax.random.uniform(jax.random.key(4), (256, 10))
    clustered = clustered_codes()
    assert float(sliced_wasserstein_to_uniform(rng, uniform)) < 0.1 * float(sliced_wasserstein_to_uniform(rng, clustered))
    grad = jax.grad(lambda c: sliced_wasserstein_to_uniform(rng, c))(clustered)
    assert float(jnp.abs(grad).max()) > 0
    loss_and_grad = jax.jit(jax.value_and_grad(lambda c, r: sliced_wasserstein_to_uniform(r, c)))
    codes = clustered
    for step in range(20):  # plain gradient descent on the codes alone
        _, grad = loss_and_grad(codes, jax.random.fold_in(rng, step))
        codes = codes - 200.0 * grad
    assert float(codes.std(axis=0).mean()) > 3 * float(clustered.std(axis=0).mean())
    assert float(sliced_wasserstein_to_uniform(rng, codes)) < 0.2 * float(sliced_wasserstein_to_uniform(rng, clustered))


def test_uniformity_report_tells_uniform_from_clustered():
    uniform = np.random.default_rng(0).random((2000, 10))
    good, bad = uniformity_report(uniform), uniformity_report(np.asarray(clustered_codes(2000)))
    assert good["ks_mean"] < 0.05 and bad["ks_mean"] > 0.4
    assert good["sliced_w2_joint"] < 0.01 * bad["sliced_w2_joint"]
    assert good["mmd_joint"] < bad["mmd_joint"]
    corner = uniformity_report(np.asarray(0.1 * clustered_codes(2000)))  # all codes near the origin
    assert corner["occupied_orthants"] == 1 / 2 ** 10 < good["occupied_orthants"]


def test_restoration_objective_decreases(params):
    clean = np.random.default_rng(0).random((4, 28, 28, 1)).astype(np.float32)
    noisy = clean + 0.2 * np.random.default_rng(1).normal(size=clean.shape).astype(np.float32)
    _, objective = restoration.restore(MODEL, params, noisy, np.ones((28, 28, 1), np.float32), 0.2, 0.01, steps=30)
    assert objective[-1] < 0.9 * objective[0]


def test_denoising_without_prior_returns_the_observation(params):
    observed = np.random.default_rng(0).random((3, 28, 28, 1)).astype(np.float32)
    restored, _ = restoration.restore(MODEL, params, observed, np.ones((28, 28, 1), np.float32), 0.1, np.inf,
                                      steps=20)
    np.testing.assert_array_equal(restored, observed)


def test_inpainting_mask_and_data_term_touch_only_the_observed_pixels(params):
    mask = restoration.central_block_mask((28, 28), 10)
    assert mask.sum() == 28 * 28 - 100 and mask[9:19, 9:19].sum() == 0 and mask[:9].min() == 1
    x = jnp.asarray(np.random.default_rng(0).random((2, 28, 28, 1)), jnp.float32)
    y = jnp.asarray(np.random.default_rng(1).random((2, 28, 28, 1)), jnp.float32)
    y_changed_inside = y.at[:, 12, 12, 0].set(0.0)
    y_changed_outside = y.at[:, 0, 0, 0].set(0.0)
    value = restoration.negative_log_posterior(MODEL, params, x, y, mask, 0.1, 0.01)
    np.testing.assert_array_equal(value, restoration.negative_log_posterior(MODEL, params, x, y_changed_inside,
                                                                            mask, 0.1, 0.01))
    assert not np.allclose(value, restoration.negative_log_posterior(MODEL, params, x, y_changed_outside, mask,
                                                                     0.1, 0.01))


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    return run_quick_study(tmp_path_factory, image_prior, "mnist")


def test_quick_run_writes_every_key(quick_run):
    out, results = quick_run
    for variant in image_prior.VARIANTS:
        scores = results[variant]
        assert 0.0 <= scores["uniformity"]["ks_mean"] <= 1.0 and scores["uniformity"]["sliced_w2_joint"] >= 0
        assert set(scores["outlier_auroc"]) >= {"noise", "inverted", "all"}
        assert 0.0 <= scores["uniform_decode_confident_fraction"] <= 1.0
        for task in ("denoise", "inpaint"):
            assert scores[task]["psnr"] > 0 and -1 <= scores[task]["ssim"] <= 1
            assert scores[task]["temperature"] in image_prior.TEMPERATURES
            assert len(results["restoration_T_sweep"][variant][task]) == len(image_prior.TEMPERATURES)
        assert len(scores["history"]["train"]["recon"]) == get_config("quick").epochs
        assert 0.0 <= scores["code_range"][0] <= scores["code_range"][1] <= 1.0
    assert results["naive"]["history"]["train"]["uniformity"][0] > 0  # logged though not optimised
    assert_report_shows_every_figure(out)
