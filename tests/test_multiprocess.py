"""A study run by two real processes (jax.distributed on 127.0.0.1, one CPU device each, collectives over gloo)
against the same study in one process of two CPU devices, the checkpoints moved between the two topologies,
and a process killed mid-run.

The study is the flagship conv VAE (experiments.vae_stl10 --dataset mnist) at its --quick settings on a
smaller slice of MNIST, 3 epochs. Three runs of it:
  one:    1 process x 2 devices, from scratch to the end (the reference);
  killed: 2 processes x 1 device; process 1 is killed once epoch 1's checkpoint exists; process 0 must stop
          with a one-line error, not hang; then the run is resumed by 1 process x 2 devices and completes;
  moved:  a copy of `one` cut back to its epoch-2 checkpoint, resumed by 2 processes x 1 device.
Tolerance: both topologies split each batch of 32 into the same two halves and sum the same two partial
gradients (an all-reduce of two numbers has one rounding, whichever side adds), so the runs may agree bit for
bit; but XLA compiles the two programs separately (a cross-process all-reduce over gloo against an in-process
one) and may fuse or order a reduction differently, which changes float32 results in the last bits (~1e-7
relative) and grows a little over the 24 Adam steps. rtol 1e-4 is far above that and far below any real
difference (a wrong batch split or a lost step moves the loss by more than 1e-2 relative).
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from tests.conftest import REAL_DATA, REPO

STUDY = ["vae_stl10", "--quick", "--dataset", "mnist", "--train-examples", "256", "--test-examples", "64",
         "--epochs", "3"]
DINO = ["dino_diffusion", "--quick", "--epochs", "4", "--checkpoint-every", "2", "--steps-per-epoch", "10",
        "--num-samples", "142"]
RTOL = 1e-4
LOST_PROCESS_SECONDS = 60  # the bound on how long process 0 may take to stop after process 1 died
# An exit code a user can read: jaxgen.errors.TrainingError's (ProcessLostError is one).
TRAINING_ERROR_CODE = __import__("jaxgen.errors", fromlist=["TrainingError"]).TrainingError.exit_code


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAX_PLATFORMS")}
    env.update(PYTHONPATH=str(REPO), JAX_PLATFORMS="cpu", JAXGEN_KEEP_CORES_AWAKE="0")
    if REAL_DATA is None or not (REAL_DATA / "mnist").exists():
        from tests import synthetic_data
        env["JAXGEN_DATA_DIR"] = str(synthetic_data.write_official_files(tmp_path_factory.mktemp("data")))
        env["JAXGEN_TEST_SYNTHETIC_DATA"] = "1"
    return env


def _command(out: Path, *flags: str, study=STUDY) -> list[str]:
    return [sys.executable, "-m", "tests.study_process", *study, "--out", str(out), *flags]


def one_process(env, out: Path, *flags: str, study=STUDY) -> dict:
    """The study in 1 process of 2 CPU devices; its results.json."""
    done = subprocess.run(_command(out, *flags, study=study), cwd=REPO, capture_output=True, text=True, timeout=600,
                          env={**env, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"})
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((out / "results.json").read_text())


def start_two_processes(env, out: Path, *flags: str, study=STUDY) -> list[subprocess.Popen]:
    """The study in 2 processes of 1 CPU device each, joined through a coordinator on 127.0.0.1."""
    coordinator = f"127.0.0.1:{_free_port()}"
    return [subprocess.Popen(_command(out, "--coordinator", coordinator, "--num-processes", "2",
                                      "--process-id", str(i), *flags, study=study),
                             cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for i in range(2)]


def _finish(process: subprocess.Popen, timeout: float) -> tuple[int, str, str]:
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        pytest.fail(f"process {process.args} still running after {timeout} s:\n{err[-3000:]}")
    return process.returncode, out, err


def _curves(results: dict) -> np.ndarray:
    history = results["history"]
    return np.array([history["total"], history["recon"], history["kl"], history["test"]["total"],
                     history["test"]["recon"], history["test"]["kl"]])


def _final_metrics(results: dict) -> np.ndarray:
    return np.array([results["test"][k] for k in ("neg_elbo", "recon", "kl", "mse", "psnr")])


def _checkpointed_params(folder: Path, epoch_index: int) -> np.ndarray:
    """The parameters in a run's checkpoint, read onto this process's one device, raveled into one vector."""
    path = folder / "checkpoints" / "vae" / str(epoch_index) / "state"
    metadata = ocp.StandardCheckpointer().metadata(path)
    tree = getattr(metadata, "item_metadata", metadata)
    device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    like = jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device), tree["params"])
    state = ocp.PyTreeCheckpointer().restore(  # the parameters only (transforms={}: the rest is left out)
        path, item={"params": like}, transforms={},
        restore_args=jax.tree.map(lambda _: ocp.ArrayRestoreArgs(sharding=device), {"params": like}))
    return np.concatenate([np.ravel(np.asarray(x)) for x in jax.tree.leaves(state["params"])])


@pytest.fixture(scope="module")
def reference(env, tmp_path_factory):
    out = tmp_path_factory.mktemp("mp") / "one"
    return out, one_process(env, out)


@pytest.fixture(scope="module")
def killed(env, tmp_path_factory):
    """(out folder, process 0's exit code, its stderr, seconds it took to stop) of the 2-process run whose
    process 1 was killed once the checkpoint of epoch 1 was written."""
    out = tmp_path_factory.mktemp("mp") / "killed"
    processes = start_two_processes(env, out)
    first_checkpoint = out / "checkpoints" / "vae" / "0"
    deadline = time.monotonic() + 600
    while not first_checkpoint.exists():
        if any(p.poll() is not None for p in processes) or time.monotonic() > deadline:
            for p in processes:
                p.kill()
            outputs = [p.communicate() for p in processes]
            pytest.fail(f"no checkpoint of epoch 1 from the 2-process run: {outputs[0][1][-2000:]}\n"
                        f"{outputs[1][1][-2000:]}")
        time.sleep(0.05)
    processes[1].send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    code, _, err = _finish(processes[0], timeout=LOST_PROCESS_SECONDS + 60)
    stopped_after = time.monotonic() - killed_at
    processes[1].communicate()
    return out, code, err, stopped_after


def test_a_lost_process_stops_the_other_with_one_line_within_a_bounded_time(killed):
    out, code, err, stopped_after = killed
    assert stopped_after < LOST_PROCESS_SECONDS
    assert code == TRAINING_ERROR_CODE, err[-3000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: process 0 of 2 lost contact with another process"), err[-3000:]
    assert "--resume" in last
    assert (out / "checkpoints" / "vae" / "0").exists()  # the finished epoch's checkpoint is kept
    assert not (out / "results.json").exists()


def test_two_processes_resumed_by_one_process_of_two_devices_continue_the_same_loss_curve(env, killed, reference):
    out = killed[0]
    resumed = one_process(env, out, "--resume")
    assert resumed["resumed"]["vae"]["epoch"] >= 1  # it continued from the 2 processes' checkpoint
    np.testing.assert_allclose(_curves(resumed), _curves(reference[1]), rtol=RTOL)
    np.testing.assert_allclose(_final_metrics(resumed), _final_metrics(reference[1]), rtol=RTOL)


def test_one_process_run_resumed_by_two_processes_matches_it(env, reference, tmp_path):
    """The reference run cut back to its epoch-2 checkpoint and resumed by 2 processes x 1 device: the same
    curves and final metrics, and only process 0 writes the results (the same files as the reference)."""
    source, expected = reference
    out = tmp_path / "moved"
    shutil.copytree(source, out)
    shutil.rmtree(out / "checkpoints" / "vae" / "2")  # the last epoch's checkpoint: that epoch runs again
    for name in json.loads((out / "run.json").read_text())["files"]:
        (out / name).unlink()
    marker = json.loads((out / "run.json").read_text())
    (out / "run.json").write_text(json.dumps({**marker, "state": "unfinished"}))
    results = []
    processes = start_two_processes(env, out, "--resume")
    for process in processes:
        code, stdout, err = _finish(process, timeout=600)
        assert code == 0, err[-3000:]
        results.append(stdout)
    assert "wrote" in results[0]
    # process 1 prints nothing (gloo's own C++ line about its connections aside)
    assert [line for line in results[1].splitlines() if not line.startswith("[Gloo]")] == []
    moved = json.loads((out / "results.json").read_text())
    assert moved["resumed"]["vae"]["epoch"] == 2
    np.testing.assert_allclose(_curves(moved), _curves(expected), rtol=RTOL)
    np.testing.assert_allclose(_final_metrics(moved), _final_metrics(expected), rtol=RTOL)
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in source.iterdir())
    # The last epoch's checkpoint, written by 2 processes x 1 device here and by 1 process x 2 devices there,
    # read by this process of 1 device: the same parameters.
    saved_by_two, saved_by_one = _checkpointed_params(out, 2), _checkpointed_params(source, 2)
    assert saved_by_two.size == saved_by_one.size == 1_274_305  # the 28x28 conv VAE
    np.testing.assert_allclose(saved_by_two, saved_by_one, rtol=RTOL, atol=1e-6)


def test_the_dino_study_in_two_processes_trains_as_one_process_of_two_devices(env, tmp_path):
    """The dino DDPM study (jaxgen.train.fit_scanned: blocks of epochs in one compiled scan, the batches drawn
    on the devices) run by 2 processes x 1 device against 1 process x 2 devices: each device draws the same
    whole batches and trains on its half, and one all-reduce of two partial sums per step joins them, so the
    same tolerance as the conv VAE's holds (the 2-process programs also keep their intra-op thread pools)."""
    one = one_process(env, tmp_path / "one", study=DINO)
    out = tmp_path / "two"
    for process in start_two_processes(env, out, study=DINO):
        code, _, err = _finish(process, timeout=600)
        assert code == 0, err[-3000:]
    two = json.loads((out / "results.json").read_text())
    for variant in ("no_time", "linear_time", "fourier"):
        a, b = one["shapes"]["dino"][variant], two["shapes"]["dino"][variant]
        assert len(b["history"]["train"]["loss"]) == 4
        for split in ("train", "test"):
            np.testing.assert_allclose(b["history"][split]["loss"], a["history"][split]["loss"], rtol=RTOL)
        np.testing.assert_allclose([b["mmd"], b["chamfer"]], [a["mmd"], a["chamfer"]], rtol=10 * RTOL)
        # a checkpoint after each block of 2 epochs, written by both processes together
        assert sorted(p.name for p in (out / "checkpoints" / f"dino_{variant}").iterdir()) == ["1", "3"]


@pytest.mark.parametrize("flags, message", [
    ({"coordinator": "127.0.0.1:1234"}, "go together"),
    ({"coordinator": "127.0.0.1:1234", "num_processes": 2, "process_id": 2}, "--process-id 2: must be in 0..1"),
    ({"coordinator": "127.0.0.1:1234", "num_processes": 2, "process_id": 0, "one_thread": True}, "PJRT_NPROC=0"),
])
def test_process_flags_are_checked_before_joining(monkeypatch, flags, message):
    from jaxgen import distributed, errors
    if flags.pop("one_thread", False):  # what the dino study sets: XLA:CPU would abort joining the run
        monkeypatch.setenv("PJRT_NPROC", "0")
    with pytest.raises(errors.ConfigError, match=message):
        distributed.configure_process(**flags)


@pytest.mark.parametrize("environment, several", [
    ({}, False), ({"SLURM_NTASKS": "1"}, False), ({"SLURM_NTASKS": "4"}, True),
    ({"OMPI_COMM_WORLD_SIZE": "2"}, True), ({"JAX_COORDINATOR_ADDRESS": "10.0.0.1:1234"}, True),
])
def test_a_launch_of_several_processes_is_recognised(monkeypatch, environment, several):
    from jaxgen import distributed
    for name in ("SLURM_NTASKS", "OMPI_COMM_WORLD_SIZE", "JAX_COORDINATOR_ADDRESS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert distributed.launched_as_several_processes() is several
