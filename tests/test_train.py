import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen import checkpoints, data, errors, objectives, train
from tests.conftest import REPO
from jaxgen.models.autoencoders import SpatialConvAE
from tests.tiny_training import MODEL, run, tiny_dataset


def leaves(state):
    return [np.asarray(x) for x in jax.tree.leaves((state.params, state.opt_state, state.step))]


def test_history_has_every_term_for_train_and_test(tmp_path):
    seen = []  # after_epoch sees each finished epoch, its checkpoint written, in order
    state, history = run(tmp_path / "ck", epochs=2, after_epoch=lambda epoch, state, history: seen.append(
        (epoch, int(state.step), len(history["epoch_seconds"]), (tmp_path / "ck" / str(epoch)).is_dir())))
    assert seen == [(0, 4, 1, True), (1, 8, 2, True)]
    for split in ("train", "test"):
        assert set(history[split]) == {"loss", "recon", "kl"}
        assert all(len(v) == 2 for v in history[split].values())
    np.testing.assert_allclose(history["train"]["loss"], np.add(history["train"]["recon"], history["train"]["kl"]),
                               rtol=1e-5)
    assert history["train"]["loss"][1] < history["train"]["loss"][0]
    assert int(state.step) == 2 * (256 // 64)


def test_resume_continues_bit_for_bit(tmp_path):
    straight, straight_history = run(tmp_path / "straight", epochs=2)
    run(tmp_path / "split", epochs=1)
    resumed, resumed_history = run(tmp_path / "split", epochs=2, resume=True)
    for a, b in zip(leaves(straight), leaves(resumed)):
        np.testing.assert_array_equal(a, b)
    assert straight_history["train"] == resumed_history["train"]
    assert straight_history["test"] == resumed_history["test"]


def test_resume_of_a_finished_run_trains_nothing(tmp_path):
    finished, _ = run(tmp_path / "ck", epochs=1)
    again, _ = run(tmp_path / "ck", epochs=1, resume=True)
    for a, b in zip(leaves(finished), leaves(again)):
        np.testing.assert_array_equal(a, b)


def test_fresh_run_refuses_to_overwrite_checkpoints(tmp_path):
    run(tmp_path / "ck", epochs=1)
    with pytest.raises(checkpoints.CheckpointExistsError, match="--resume"):
        run(tmp_path / "ck", epochs=1)
    run(tmp_path / "ck", epochs=1, overwrite=True)  # explicitly allowed


def test_nan_guard_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    base = objectives.vae_objective(MODEL)

    def explodes_in_second_epoch(params, batch, rng):
        terms = base(params, batch, rng)
        poisoned = jnp.where(jnp.sum(batch["image"]) > -1, terms["loss"] * jnp.nan, terms["loss"])
        return {**terms, "loss": poisoned}

    good, _ = run(tmp_path / "ck", epochs=1)
    with pytest.raises(train.NonFiniteLossError, match="last good checkpoint"):
        run(tmp_path / "ck", epochs=2, resume=True, objective=explodes_in_second_epoch)
    checkpointer = checkpoints.EpochCheckpointer(tmp_path / "ck")
    assert checkpointer.latest_epoch() == 0
    epoch, restored, _ = checkpointer.restore(good)
    for a, b in zip(leaves(good), leaves(restored)):
        np.testing.assert_array_equal(a, b)


def test_corrupt_checkpoint_gets_a_clear_error(tmp_path):
    run(tmp_path / "ck", epochs=1)
    for path in (tmp_path / "ck").rglob("*"):
        if path.is_file() and path.stat().st_size > 0 and "state" in str(path):
            path.write_bytes(b"garbage")
    with pytest.raises(checkpoints.CorruptCheckpointError, match="epoch 1 .* cannot be read .*--overwrite"):
        run(tmp_path / "ck", epochs=2, resume=True)


def test_batch_larger_than_the_dataset_is_reported(tmp_path):
    with pytest.raises(errors.ConfigError, match=r"batch size 512 \(--batch-size\) is larger than the 256 training examples"):
        run(tmp_path / "ck", epochs=1, batch_size=512)


def test_one_and_eight_devices_agree(tmp_path):
    def launch(devices, folder):
        env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
               "PYTHONPATH": str(REPO)}
        out = subprocess.run([sys.executable, "-m", "tests.tiny_training", str(tmp_path / folder)], env=env,
                             cwd=REPO, capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stderr[-3000:]
        return json.loads(out.stdout.strip().splitlines()[-1])

    one, eight = launch(1, "one"), launch(8, "eight")
    assert (one["devices"], eight["devices"]) == (1, 8)
    for split in ("train", "test"):
        for term in one["history"][split]:
            np.testing.assert_allclose(eight["history"][split][term], one["history"][split][term], rtol=1e-4)
    np.testing.assert_allclose(eight["param_sum"], one["param_sum"], rtol=1e-4)


def test_batched_apply_pads_and_trims():
    out = train.batched_apply(lambda batch, i: batch["x"] * 2, {"x": np.arange(10, dtype=np.float32)}, 4)
    np.testing.assert_array_equal(out, np.arange(10) * 2)


def test_tunable_settings_are_inputs_of_one_compiled_step():
    """Two noise levels through one train.Tunable: the same numbers as objectives with the level written in,
    from one compiled train step and one compiled evaluation."""
    model = SpatialConvAE((8, 8, 1), 64, (4, 8))
    params = model.init(jax.random.key(0), np.zeros((1, 8, 8, 1), np.float32))
    images = tiny_dataset(32).images
    config = train.TrainConfig(epochs=1, batch_size=32, steps_per_call=1)
    mesh = train.data_mesh()
    batches = {"image": images[None], "label": np.zeros((1, 32), np.int32)}

    def trained(objective):
        state = train.create_train_state(jax.tree.map(np.array, params), train.adam(config), mesh)  # donated
        state, terms = train.make_train_chunk(objective, mesh, seed=3)(state, batches)
        scores = train.make_evaluator(objective, 32, seed=3, mesh=mesh)(state.params, images, np.zeros(32))
        return leaves(state), np.asarray(terms["loss"]), scores

    results = []
    for sigma in (0.1, 0.3):
        tunable = objectives.autoencoder_objective(model, noise_sigma=sigma)
        assert isinstance(tunable, train.Tunable)

        def written_in(p, batch, rng, sigma=sigma):  # the denoising loss with its noise level as a constant
            x = data.to_float_jax(batch["image"])
            logits, _ = model.apply(p, data.add_gaussian_noise(jax.random.split(rng)[0], x, sigma))
            return {"loss": jnp.mean((jax.nn.sigmoid(logits) - x) ** 2, axis=(1, 2, 3))}

        (tuned, tuned_loss, tuned_scores), (plain, plain_loss, plain_scores) = trained(tunable), trained(written_in)
        for a, b in zip(tuned, plain):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(tuned_loss, plain_loss, rtol=1e-6)
        assert tuned_scores["loss"] == pytest.approx(plain_scores["loss"], rel=1e-6)
        results.append(tuned)
    assert max(float(np.abs(a - b).max()) for a, b in zip(*results)) > 1e-4  # the level mattered
    assert train._train_chunk_program(tunable.fn, mesh)._cache_size() == 1
    assert train._evaluation(tunable.fn) is train._evaluation(objectives.autoencoder_objective(model, 0.5).fn)


# ------------------------------------------------------------------------------------------ the scanned mode

def scanned_regression(poison_from_epoch: int | None = None):
    """A run_epochs for fit_scanned: 3 SGD steps per epoch of a linear fit to y = x @ [1, -2], each epoch's x
    drawn on the device from its number; the loss turns NaN from epoch `poison_from_epoch` on, if given."""
    def run(state, epochs):
        def epoch(state, e):
            x = jax.random.normal(jax.random.fold_in(jax.random.key(0), e), (3, 8, 2))
            def step(state, x):
                loss, grads = jax.value_and_grad(lambda p: jnp.mean((x @ p["w"] - x @ jnp.array([1.0, -2.0])) ** 2))(
                    state.params)
                return state.apply_gradients(grads=grads), loss
            state, losses = jax.lax.scan(step, state, x)
            loss = losses.mean()
            if poison_from_epoch is not None:
                loss = jnp.where(e >= poison_from_epoch, jnp.nan, loss)
            return state, (loss, jnp.sum(state.params["w"] ** 2))
        state, (loss, norm) = jax.lax.scan(epoch, state, epochs)
        return state, {"train": {"loss": loss}, "test": {"norm": norm}}
    return jax.jit(run)


def scanned_fit(folder, epochs, per_call, resume=False, run_epochs=None, **kwargs):
    import optax
    state = train.create_train_state({"w": jnp.zeros(2)}, optax.sgd(0.05))
    return train.fit_scanned(state, run_epochs or scanned_regression(), epochs, per_call, folder, resume=resume,
                             desc="scanned", **kwargs)


def test_scanned_mode_checkpoints_each_block_and_resumes_bit_for_bit(tmp_path):
    straight, history = scanned_fit(tmp_path / "straight", 6, 2)
    assert set(history) == {"train", "test", "epoch_seconds"} and len(history["train"]["loss"]) == 6
    assert history["train"]["loss"][-1] < history["train"]["loss"][0] / 10  # it learns
    assert int(straight.step) == 18
    assert sorted(int(p.name) for p in (tmp_path / "straight").iterdir() if p.name.isdigit()) == [3, 5]
    scanned_fit(tmp_path / "split", 4, 2)
    resumed_at = []
    resumed, resumed_history = scanned_fit(tmp_path / "split", 6, 2, resume=True,
                                           on_resume=lambda epoch, step: resumed_at.append((epoch, step)))
    assert resumed_at == [(4, 12)]
    np.testing.assert_array_equal(resumed.params["w"], straight.params["w"])
    assert resumed_history["train"] == history["train"] and resumed_history["test"] == history["test"]
    # One block of all epochs: the same epochs, the same numbers (to float rounding of another compiled scan).
    whole, whole_history = scanned_fit(tmp_path / "whole", 6, 6)
    np.testing.assert_allclose(whole.params["w"], straight.params["w"], rtol=1e-6)
    np.testing.assert_allclose(whole_history["train"]["loss"], history["train"]["loss"], rtol=1e-6)


def test_scanned_mode_reuses_a_finished_run_and_stops_on_nan(tmp_path):
    scanned_fit(tmp_path / "ck", 4, 2)
    def never(state, epochs):
        raise AssertionError("a finished run trained again")
    _, history = scanned_fit(tmp_path / "ck", 4, 2, resume=True, run_epochs=never)
    assert len(history["train"]["loss"]) == 4
    with pytest.raises(train.NonFiniteLossError, match="during epoch 6.*last good checkpoint"):
        scanned_fit(tmp_path / "ck", 8, 2, resume=True, run_epochs=scanned_regression(poison_from_epoch=5))
    assert checkpoints.EpochCheckpointer(tmp_path / "ck").latest_epoch() == 3  # block 5-6 was not saved
    with pytest.raises(ValueError, match="at least 1"):
        scanned_fit(tmp_path / "other", 4, 0)
