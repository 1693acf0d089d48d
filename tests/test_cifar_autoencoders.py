import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import cifar_autoencoders
from jaxgen import probes
from jaxgen.models.autoencoders import SpatialConvAE, SpatialConvVAE
from jaxgen.reconstruction import (masked_region_errors, noised_images, occlusion_sensitivity,
                                   reconstruction_scores)
from tests.quick_study import assert_report_shows_every_figure, run_quick_study

SHAPE = (32, 32, 3)


def test_model_shapes_and_latent_size():
    ae, vae = SpatialConvAE(SHAPE, 512, (8, 16)), SpatialConvVAE(SHAPE, 512, (8, 16))
    x = jnp.zeros((2,) + SHAPE)
    logits, code = ae.apply(ae.init(jax.random.key(0), x), x)
    assert logits.shape == (2,) + SHAPE and code.shape == (2, 512)
    params = vae.init(jax.random.key(0), x, jax.random.key(1))
    logits, mean, logvar = vae.apply(params, x, jax.random.key(1))
    assert logits.shape == (2,) + SHAPE and mean.shape == logvar.shape == (2, 512)
    with pytest.raises(ValueError, match="multiple of 64"):
        SpatialConvAE(SHAPE, 100, (8, 16)).init(jax.random.key(0), x)


def test_default_architecture_parameter_count_is_pinned():
    ae = SpatialConvAE(SHAPE, 512, (32, 64))
    params = ae.init(jax.random.key(0), jnp.zeros((1,) + SHAPE))
    # conv1 3*16*32+32, conv2 32*16*64+64, to_code 64*9*8+8, from_code 8*9*64+64, upconv1 64*16*32+32, upconv2 32*16*3+3
    expected = 1568 + 32832 + 4616 + 4672 + 32800 + 1539
    assert sum(p.size for p in jax.tree.leaves(params)) == expected


def test_feature_mask_hides_exactly_the_masked_patches():
    """conv1 (4x4, stride 2, padding 1) feature cell i sees pixel rows 2i-1..2i+2, so pixels 0..2 feed
    only cells 0 and 1: with that 2x2 patch masked, changing them cannot change the code."""
    ae = SpatialConvAE(SHAPE, 512, (8, 16))
    x = jax.random.uniform(jax.random.key(0), (1,) + SHAPE)
    params = ae.init(jax.random.key(1), x)
    mask = jnp.ones((1, 16, 16, 1)).at[:, :2, :2].set(0.0)
    under_patch = x.at[:, :3, :3].set(1.0 - x[:, :3, :3])
    beside_patch = x.at[:, 3:6, 3:6].set(1.0 - x[:, 3:6, 3:6])
    code = lambda images, m: ae.apply(params, images, m, method=ae.encode)  # noqa: E731
    np.testing.assert_array_equal(code(under_patch, mask), code(x, mask))
    assert float(jnp.abs(code(under_patch, None) - code(x, None)).max()) > 1e-4
    assert float(jnp.abs(code(beside_patch, mask) - code(x, mask)).max()) > 1e-4


def test_reconstruction_scores_known_answers():
    images = np.full((6,) + SHAPE, 0.5, np.float32)
    perfect = reconstruction_scores(lambda _, x: x, None, images)[0.0]
    assert perfect["mse"] == 0.0 and perfect["mae"] == 0.0 and perfect["ssim"] == pytest.approx(1.0)
    black = reconstruction_scores(lambda _, x: jnp.zeros_like(x), None, images)[0.0]
    assert black["mse"] == pytest.approx(0.25) and black["mae"] == pytest.approx(0.5)
    assert black["psnr"] == pytest.approx(10 * math.log10(4), abs=1e-4)
    # Identity on inputs noised at sigma (mid-grey: clipping is 5 sigma away): PSNR = -20 log10 sigma.
    many = np.full((200,) + SHAPE, 0.5, np.float32)
    noisy = reconstruction_scores(lambda _, x: x, None, many, (0.1, 0.3), seed=3)[0.1]
    assert noisy["psnr"] == pytest.approx(20.0, abs=0.05)
    inputs = noised_images(many, 0.1, seed=3)
    assert np.std(inputs - 0.5) == pytest.approx(0.1, rel=0.01)
    assert np.mean((inputs - 0.5) ** 2) == pytest.approx(noisy["mse"], rel=1e-5)  # the very same noise


def test_masked_region_errors_split_by_mask():
    images = np.full((8,) + SHAPE, 0.5, np.float32)

    def hide_masked_pixels(params, x, mask):  # a "reconstruction" that blacks out exactly the masked footprint
        if mask is None:
            return x
        return x * jnp.repeat(jnp.repeat(mask, 2, axis=1), 2, axis=2)

    errors = masked_region_errors(hide_masked_pixels, None, images, ratios=(0.25, 0.75), patch=2)
    for ratio in (0.25, 0.75):
        assert errors[ratio]["masked_mse"] == pytest.approx(0.25)
        assert errors[ratio]["unmasked_mse"] == 0.0 and errors[ratio]["no_mask_mse"] == 0.0


def test_occlusion_sensitivity_finds_the_region_that_matters():
    images = np.ones((2,) + SHAPE, np.float32)

    def only_top_left(params, x):  # reconstructs the top-left quadrant, ignores the rest of the input
        return x.at[:, :, 16:].set(1.0).at[:, 16:, :].set(1.0)

    heat = occlusion_sensitivity(only_top_left, None, images, size=8, stride=4)
    assert heat.shape == (2, 32, 32)
    np.testing.assert_array_equal(heat[0], heat[1])
    heat = heat[0]
    assert heat[:12, :12].min() > 0 and heat[20:, :].max() == 0 and heat[:, 20:].max() == 0
    assert heat[4, 4] == pytest.approx(64 * 0.25 / (32 * 32 * 3) * 3)  # each window adds 8*8 px of (1-0.5)^2


def test_linear_probe_beats_chance_on_separable_data():
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 3, (10, 20))
    labels = rng.integers(0, 10, 2000)
    features = centres[labels] + rng.normal(size=(2000, 20))
    accuracy, _ = probes.linear_probe(features[:1500], labels[:1500], features[1500:], labels[1500:])
    assert accuracy > 0.9
    shuffled, _ = probes.linear_probe(features[:1500], rng.permutation(labels[:1500]), features[1500:], labels[1500:])
    assert shuffled < 0.2
    projected = probes.projected_probe(features[:1500], labels[:1500], features[1500:], labels[1500:])
    assert projected["test_points"].shape == (500, 2) and 0.1 < projected["accuracy"] <= accuracy


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    return run_quick_study(tmp_path_factory, cifar_autoencoders, "cifar10")


def test_quick_run_writes_every_key(quick_run):
    out, results = quick_run
    models = {*cifar_autoencoders.MODELS, "ae_latent512"}  # and the AE at the reference bottleneck
    assert set(results["models"]) == models and results["models"]["ae_latent512"]["latent_dim"] == 512
    for model in models:
        for condition in ("clean", "noisy_0.1", "noisy_0.3", "noisy_0.5"):
            scores = results[model][condition]
            assert set(scores) == {"mse", "mae", "psnr", "ssim"}
            assert all(np.isfinite(v) for v in scores.values())
        assert len(results["history"][model]["epoch_seconds"]) == results["config"]["epochs"]
    assert set(results["probe"]) == {"raw", *models}
    assert all(0.0 <= v <= 1.0 for v in results["probe"].values())
    # The noisy conditions really feed noisy inputs (a one-epoch model need not be better on clean ones).
    assert all(results[m]["clean"]["mse"] != results[m]["noisy_0.5"]["mse"] for m in models)
    assert set(results["masking"]["region_errors"]["mcae_0.5"]) == {"0.25", "0.5", "0.75"}
    assert_report_shows_every_figure(out)
