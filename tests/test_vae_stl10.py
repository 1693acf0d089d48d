import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import latent_arithmetic, vae_stl10
from experiments.configs.vae_stl10 import get_config
from jaxgen import latent, objectives
from jaxgen.errors import CheckpointError
from jaxgen.models.autoencoders import ConvVAE
from jaxgen.vae import decode_pixels, encode_means, reconstruct
from tests.quick_study import assert_report_shows_every_figure, run_quick_study

QUICK = get_config("quick")
REQUIRED = ("dataset", "config", "layer_table", "test", "history", "interpolation", "style_transfer")


def test_stl10_model_shapes_and_parameter_count():
    model = ConvVAE((96, 96, 3), 128)
    x = jnp.zeros((2, 96, 96, 3))
    params = model.init(jax.random.key(0), x, jax.random.key(1))
    logits, mean, logvar = model.apply(params, x, jax.random.key(2))
    chex.assert_shape(logits, (2, 96, 96, 3))
    chex.assert_shape([mean, logvar], (2, 128))
    # conv 3-32-64-128-256 (4x4/2) | dense 9216 -> 2x128 | dense 128 -> 9216 | upconv 256-128-64-32-3
    assert sum(p.size for p in jax.tree.leaves(params)) == 4_928_451


def test_indivisible_image_size_is_refused():
    with pytest.raises(ValueError, match="divisible by 16"):
        ConvVAE((28, 28, 1), 8, (8, 8, 8, 8)).init(jax.random.key(0), jnp.zeros((1, 28, 28, 1)), jax.random.key(0))


def test_zero_strength_returns_z_a_exactly():
    rng = np.random.default_rng(0)
    z_a, z_b, mean_b = (rng.normal(size=16).astype(np.float32) for _ in range(3))
    strengths = vae_stl10.STYLE_STRENGTHS
    offset, towards = latent.transfer_class_offset(z_a, z_b, mean_b, strengths), latent.move_towards(z_a, z_b, strengths)
    np.testing.assert_array_equal(offset[0], z_a)
    np.testing.assert_array_equal(towards[0], z_a)
    np.testing.assert_allclose(towards[-1], z_b, rtol=1e-6)
    np.testing.assert_allclose(offset[-1], z_a + z_b - mean_b, rtol=1e-6)


def test_interpolation_endpoints_decode_to_the_reconstructions():
    model = ConvVAE((32, 32, 3), 8, (8, 16))
    params = model.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)), jax.random.key(1))
    images = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    z = encode_means(model, params, images)
    path = latent.interpolate(z[0], z[1], vae_stl10.INTERPOLATION_ALPHAS)
    np.testing.assert_array_equal(path[0], z[0])
    np.testing.assert_array_equal(path[-1], z[1])
    decoded = decode_pixels(model, params, path)
    np.testing.assert_allclose(decoded[[0, -1]], reconstruct(model, params, images), atol=1e-6)


def test_kl_warmup_ramps_the_weight_during_training_only():
    model = ConvVAE((32, 32, 3), 8, (8, 16))
    params = model.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)), jax.random.key(1))
    batch = {"image": np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)}
    objective = objectives.vae_objective(model, kl_warmup_steps=10)
    rng = jax.random.key(3)
    for step, weight in ((0, 0.0), (5, 0.5), (10, 1.0), (50, 1.0)):
        terms = objective(params, {**batch, "step": jnp.int32(step)}, rng)
        np.testing.assert_allclose(terms["loss"], terms["recon"] + weight * terms["kl"], rtol=1e-6)
    terms = objective(params, batch, rng)  # evaluation: the full ELBO
    np.testing.assert_allclose(terms["loss"], terms["recon"] + terms["kl"], rtol=1e-6)


@pytest.fixture(scope="module")
def cifar_run(tmp_path_factory):
    return run_quick_study(tmp_path_factory, vae_stl10, "cifar10", "--dataset", "cifar10")


@pytest.fixture(scope="module")
def stl_run(tmp_path_factory):
    return run_quick_study(tmp_path_factory, vae_stl10, "stl10_first37", "--dataset", "stl10_first37")


@pytest.mark.parametrize("run_name", ["cifar_run", "stl_run"])
def test_quick_run_writes_every_key(run_name, request):
    out, results = request.getfixturevalue(run_name)
    for key in REQUIRED:
        assert key in results, key
    assert results["config"] == QUICK.replace(dataset=results["dataset"]).to_dict()
    assert results["config"]["epochs"] == QUICK.epochs and results["config"]["latent_dim"] == 128
    for key in ("mse", "psnr", "ssim", "neg_elbo"):
        assert np.isfinite(results["test"][key])
    for key in ("recon", "kl", "total"):
        assert len(results["history"][key]) == QUICK.epochs
    np.testing.assert_allclose(results["history"]["total"], np.add(results["history"]["recon"],
                                                                   results["history"]["kl"]), rtol=1e-4)
    assert sum(r["parameters"] for r in results["layer_table"]) == results["num_params"]
    assert results["interpolation"]["alphas"] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert len(results["interpolation"]["pairs"]) == 2 and len(results["style_transfer"]["pairs"]) == 2
    assert results["style_transfer"]["lambdas"] == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    assert_report_shows_every_figure(out)
    assert "| encoder/conv1 | DownConv | 4x4 / 2 |" in (out / "report.md").read_text()


def test_cifar_pairs_are_from_different_classes(cifar_run):
    _, results = cifar_run
    for pair in results["interpolation"]["pairs"] + results["style_transfer"]["pairs"]:
        assert pair["a"]["class"] != pair["b"]["class"]


def test_checkpoint_script_reproduces_reconstructions_bit_for_bit(stl_run, tmp_path):
    out, results = stl_run
    saved = np.load(out / vae_stl10.SAVED_RECONSTRUCTIONS)
    decoded = latent_arithmetic.main(["--checkpoint", str(out / "models" / "vae"), "--mode", "reconstruct",
                                      "--images", *map(str, saved["indices"]), "--out", str(tmp_path)])
    np.testing.assert_array_equal(decoded, saved["reconstructions"])
    style = latent_arithmetic.main(["--checkpoint", str(out / "models" / "vae"), "--mode", "style",
                                    "--images", "0", "1", "--out", str(tmp_path)])
    assert style.shape == (2, 6, 96, 96, 3)
    np.testing.assert_allclose(style[:, 0], decoded[[0, 0]], atol=1e-6)  # strength 0 decodes z_A


def test_checkpoint_script_explains_a_wrong_folder(tmp_path):
    with pytest.raises(CheckpointError, match="not an exported model"):
        latent_arithmetic.main(["--checkpoint", str(tmp_path), "--images", "0", "1"])
