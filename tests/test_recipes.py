"""The published projectors' recipes (`--recipe official | rosinality`): noise maps optimised with the
noise regularisation and renormalisation, the learning-rate ramps."""
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.stylegan import self_test
from jaxgen.stylegan import invert
from jaxgen.stylegan.generator import StyleGAN2Generator
from jaxgen.stylegan.perceptual import load_lpips_vgg
from tests.test_stylegan2 import TINY


def test_noise_regulariser_known_values():
    """8 px: a ramp n[i, j] = j gives mean(n * roll_x n)^2 + mean(n * roll_y n)^2 = (112 / 8)^2 + (140 / 8)^2
    = 196 + 306.25; a checkerboard gives (-1)^2 + (-1)^2 = 2. 16 px: a checkerboard gives 2 at 16 px and 0
    after the 2x2 mean; zeros give 0."""
    ramp = np.tile(np.arange(8.0), (8, 1))
    checker8 = (-1.0) ** np.add.outer(np.arange(8), np.arange(8))
    checker16 = (-1.0) ** np.add.outer(np.arange(16), np.arange(16))
    maps = [jnp.asarray(np.stack([ramp, checker8]), jnp.float32),
            jnp.asarray(np.stack([np.zeros((16, 16)), checker16]), jnp.float32)]
    np.testing.assert_allclose(invert.noise_regularisation(maps), [502.25, 4.0], rtol=1e-6)
    normalised = invert.normalise_noise([jnp.asarray(np.stack([ramp, 3 * ramp + 1]), jnp.float32)])[0]
    np.testing.assert_allclose(normalised.mean(axis=(1, 2)), 0.0, atol=1e-6)
    np.testing.assert_allclose(jnp.mean(jnp.square(normalised), axis=(1, 2)), 1.0, rtol=1e-5)
    np.testing.assert_allclose(normalised[0], normalised[1], atol=1e-5)


def test_learning_rate_ramps():
    recipe = invert.RECIPES["official"]
    rates = [float(invert.recipe_learning_rate(recipe, t)) for t in (0.0, 0.025, 0.05, 0.5, 0.875, 0.999)]
    assert rates[0] == 0.0 and rates[1] == pytest.approx(0.05) and rates[2] == pytest.approx(0.1)
    assert rates[3] == pytest.approx(0.1) and rates[4] == pytest.approx(0.05) and rates[5] < 1e-3


def test_recipe_optimises_the_noise_maps_and_lowers_the_loss():
    """NVIDIA's recipe (w); rosinality's differs only in optimising w+ (checked in the table). Then
    `recipe_in_chunks` over three targets, two at a time."""
    name = "official"
    assert invert.RECIPES["rosinality"] == invert.Recipe("rosinality", "w_plus")
    module = StyleGAN2Generator(TINY)
    variables = self_test.seeded_variables(TINY, seed=0)
    for block in variables["params"]["synthesis"].values():  # noise must reach the image to be optimised
        for layer in block.values():
            if isinstance(layer, dict) and "noise_strength" in layer:
                layer["noise_strength"] = jnp.asarray(0.3)
    targets = module.apply(variables, jnp.ones((2, TINY.z_dim)))
    recipe = invert.Recipe(name, invert.RECIPES[name].space, iterations=6, steps_per_call=3, lpips_resolution=48)
    result = invert.invert_with_recipe(module, variables, targets, recipe, load_lpips_vgg(), progress=False)
    assert result.loss_history.shape == (6, 2) and np.all(result.loss_history[-1] < result.loss_history[0])
    start = invert.initial_noise_maps(variables, 2)
    assert len(result.noise_maps) == len(start) == 2 * len(TINY.block_resolutions) - 1
    for final, initial in zip(result.noise_maps, start):
        assert final.shape == initial.shape and np.max(np.abs(final - np.asarray(initial))) > 1e-3
        np.testing.assert_allclose(final.mean(axis=(1, 2)), 0.0, atol=1e-5)
        np.testing.assert_allclose(np.mean(final ** 2, axis=(1, 2)), 1.0, rtol=1e-4)
    expected_latent = (2, TINY.w_dim) if name == "official" else (2, TINY.num_ws, TINY.w_dim)
    assert result.latents.shape == expected_latent

    # Three targets two at a time: the last chunk padded, the same compiled program, the first chunk this run.
    traced = sum(invert.TRACES.values())
    chunked = invert.recipe_in_chunks(module, variables, np.concatenate([targets, targets[:1]]), recipe,
                                      load_lpips_vgg(), batch_size=2, progress=False)
    assert chunked.chunks == [2, 1] and sum(invert.TRACES.values()) == traced
    assert chunked.latents.shape == (3, *expected_latent[1:]) and chunked.loss_history.shape == (6, 3)
    np.testing.assert_array_equal(chunked.latents[:2], result.latents)
    for joined, alone in zip(chunked.noise_maps, result.noise_maps):
        assert joined.shape == (3, *alone.shape[1:])
        np.testing.assert_array_equal(joined[:2], alone)
