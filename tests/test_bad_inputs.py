"""Every study's entry point against bad inputs, each in a fresh process as a user runs it.

For each case: a non-zero exit with the kind's code (jaxgen.errors), at most 3 lines on stderr and no
traceback, the file or flag named, every file that was there before byte-identical afterwards, and no
output folder left behind where there was none. Nothing reaches the network: downloads go to a closed
port on 127.0.0.1 (JAXGEN_MIRROR). Most cases fail before anything is compiled.
"""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from experiments import configs
from jaxgen import errors

REPO_ROOT = Path(__file__).resolve().parents[1]
STUDIES = ("mnist_vae", "vae_stl10", "cifar_autoencoders", "image_prior", "dino_diffusion")
# The studies that read a downloaded data set: (flags, the first file they need, relative to the data folder).
DATA_STUDIES = {
    "mnist_vae": ((), "mnist/train-images-idx3-ubyte.gz"),
    "image_prior": ((), "mnist/train-images-idx3-ubyte.gz"),
    "vae_stl10": (("--dataset", "cifar10"), "cifar10/cifar-10-python.tar.gz"),
    "cifar_autoencoders": ((), "cifar10/cifar-10-python.tar.gz"),
}
# Bad budget values, one per study (every value on every study is checked in-process in test_configs).
BAD_FLAGS = {
    "mnist_vae": (("--epochs", "0"), "--epochs 0"),
    "vae_stl10": (("--batch-size", "0"), "--batch-size 0"),
    "cifar_autoencoders": (("--epochs", "-1"), "--epochs -1"),
    "image_prior": (("--config.batch_size=-4",), "--config.batch_size -4"),
    "dino_diffusion": (("--learning-rate", "abc"), "--learning-rate abc"),
}


@pytest.fixture(scope="module")
def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again on return: connections are refused


@pytest.fixture
def case(tmp_path, closed_port):
    return Case(tmp_path, closed_port)


class Case:
    """One bad-input run: a scratch folder, the command, and the checks every case makes."""

    def __init__(self, root: Path, port: int):
        self.root = root
        self.env = {k: v for k, v in os.environ.items() if k not in ("JAXGEN_DATA_DIR", "JAXGEN_DEBUG")}
        self.env.update({"JAXGEN_MIRROR": f"http://127.0.0.1:{port}", "XDG_CACHE_HOME": str(root / "cache"),
                         "JAXGEN_DATA_DIR": str(root / "no_data")})

    def run(self, module: str, *argv: str):
        self.before = self.snapshot()
        self.result = subprocess.run([sys.executable, "-m", f"experiments.{module}", *argv], cwd=REPO_ROOT,
                                     env=self.env, capture_output=True, text=True, timeout=300)
        return self.result

    def snapshot(self) -> dict:
        return {p: p.read_bytes() for p in self.root.rglob("*") if p.is_file() and "cache" not in p.parts}

    def assert_refused(self, kind: type, *named: str, out: Path | None = None):
        result = self.result
        stderr = result.stderr.strip()
        assert result.returncode == kind.exit_code, (result.returncode, stderr[-3000:])
        assert "Traceback" not in stderr, stderr[-3000:]
        assert 1 <= len(stderr.splitlines()) <= 3, stderr
        for text in named:
            assert str(text) in stderr, (text, stderr)
        after = self.snapshot()
        for path, content in self.before.items():
            assert after.get(path) == content, f"{path} changed"
        if out is not None and out not in self.before and not any(out == p or out in p.parents for p in self.before):
            assert not out.exists(), f"{out} was created by a run that failed"


def fake_finished_run(folder: Path, study: str) -> None:
    """A finished run of `study` as a study leaves it: marker, results, report and a figure."""
    folder.mkdir(parents=True)
    config = configs.load(study, "quick").to_dict()
    (folder / "run.json").write_text(json.dumps({"study": study, "state": "finished", "budget": "quick",
                                                 "config": config, "files": ["results.json", "report.md", "a.png"]}))
    (folder / "results.json").write_text(json.dumps({"study": study, "config": config, "score": 1.5}))
    (folder / "report.md").write_text(f"# {study}\n")
    (folder / "a.png").write_bytes(b"\x89PNG not really")


@pytest.mark.parametrize("study", STUDIES)
def test_bad_budget_value(case, study):
    flags, named = BAD_FLAGS[study]
    out = case.root / "out"
    case.run(study, "--quick", "--out", str(out), *flags)
    case.assert_refused(errors.ConfigError, named, "must be", out=out)


@pytest.mark.parametrize("study", STUDIES)
def test_out_is_a_file(case, study):
    out = case.root / "results.txt"
    out.write_text("a file the user keeps")
    case.run(study, "--quick", "--out", str(out))
    case.assert_refused(errors.OutputFolderError, out, "is a file")


@pytest.mark.parametrize("study", STUDIES)
def test_out_holds_another_studys_results(case, study):
    other = "dino_diffusion" if study != "dino_diffusion" else "mnist_vae"
    out = case.root / "out"
    fake_finished_run(out, other)
    case.run(study, "--quick", "--out", str(out))
    case.assert_refused(errors.OutputFolderError, out, f"finished {other} run", "--overwrite")
    if study == "mnist_vae":  # --resume does not make it ours
        case.run(study, "--quick", "--out", str(out), "--resume")
        case.assert_refused(errors.OutputFolderError, out, f"finished {other} run")


def test_out_below_a_file(case):
    parent = case.root / "notes.txt"
    parent.write_text("x")
    case.run("dino_diffusion", "--quick", "--out", str(parent / "run"))
    case.assert_refused(errors.OutputFolderError, parent, "is a file")


def test_out_holds_unrelated_files(case):
    out = case.root / "photos"
    out.mkdir()
    (out / "holiday.jpg").write_bytes(b"jpeg bytes")
    case.run("dino_diffusion", "--quick", "--out", str(out))
    case.assert_refused(errors.OutputFolderError, out, "holiday.jpg", "not empty")


def test_unfinished_run_needs_resume_or_overwrite(case):
    out = case.root / "out"
    out.mkdir()
    (out / "run.json").write_text(json.dumps({"study": "dino_diffusion", "state": "unfinished",
                                              "config": configs.load("dino_diffusion", "quick").to_dict()}))
    (out / "models").mkdir()
    case.run("dino_diffusion", "--quick", "--out", str(out))
    case.assert_refused(errors.OutputFolderError, "unfinished dino_diffusion run", "--resume", "--overwrite")
    case.run("dino_diffusion", "--quick", "--out", str(out), "--resume", "--epochs", "3")
    quick_epochs = configs.load("dino_diffusion", "quick").epochs
    case.assert_refused(errors.OutputFolderError, "another config", f"--epochs {quick_epochs} there, 3 here")


def test_resume_and_overwrite_together(case):
    case.run("mnist_vae", "--quick", "--resume", "--overwrite", "--out", str(case.root / "out"))
    case.assert_refused(errors.ConfigError, "--resume", "--overwrite", out=case.root / "out")


@pytest.mark.parametrize("study", sorted(DATA_STUDIES))
def test_empty_data_folder(case, study):
    flags, first_file = DATA_STUDIES[study]
    data_dir, out = case.root / "data", case.root / "out"
    data_dir.mkdir()
    case.run(study, "--quick", "--data-dir", str(data_dir), "--out", str(out), *flags)
    case.assert_refused(errors.DownloadError, Path(first_file).name, "JAXGEN_MIRROR", out=out)


@pytest.mark.parametrize("study", sorted(DATA_STUDIES))
def test_truncated_data_file(case, study):
    flags, first_file = DATA_STUDIES[study]
    data_dir, out = case.root / "data", case.root / "out"
    path = data_dir / first_file
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\x1f\x8b" + bytes(998))  # a gzip header and then nothing: the first 1,000 bytes
    case.run(study, "--quick", "--data-dir", str(data_dir), "--out", str(out), *flags)
    case.assert_refused(errors.DataError, path, out=out)


def test_corrupted_data_file(case):
    """The right size with the wrong bytes."""
    data_dir, out = case.root / "data", case.root / "out"
    path = data_dir / "mnist" / "train-images-idx3-ubyte.gz"
    path.parent.mkdir(parents=True)
    path.write_bytes(bytes(9_912_422))
    case.run("mnist_vae", "--quick", "--data-dir", str(data_dir), "--out", str(out))
    case.assert_refused(errors.DataError, path, "sha256", out=out)


def test_truncated_data_archive_in_the_legacy_layout(case):
    data_dir, out = case.root / "data", case.root / "out"
    path = data_dir / "cifar10" / "cifar10.npz"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"PK\x03\x04" + bytes(500))
    case.run("cifar_autoencoders", "--quick", "--data-dir", str(data_dir), "--out", str(out))
    case.assert_refused(errors.DataError, path, out=out)


def test_truncated_checkpoint_with_resume(case):
    """A checkpoint cut short: the dino study (embedded data) reads it with --resume."""
    out = case.root / "out"
    epoch = out / "checkpoints" / "dino_no_time" / "4"  # the dino's first model, after its first block
    (epoch / "state").mkdir(parents=True)
    (epoch / "state" / "_METADATA").write_text('{"tree_metadata": {"params": ')  # cut mid-file
    (epoch / "_CHECKPOINT_METADATA").write_text("{")
    (out / "run.json").write_text(json.dumps({"study": "dino_diffusion", "state": "unfinished",
                                              "config": configs.load("dino_diffusion", "quick").to_dict()}))
    case.run("dino_diffusion", "--quick", "--out", str(out), "--resume")
    case.assert_refused(errors.CheckpointError, epoch.parent, "epoch 5", "cannot be read", "--overwrite")
    assert not (out / ".staging").exists()


@pytest.mark.parametrize("setup, named", [
    ("missing", "no such folder"), ("not_exported", "not an exported model"), ("wrong_kind", "MnistConvVAE"),
    ("truncated", "cannot be read")])
def test_latent_arithmetic_bad_checkpoint(case, setup, named):
    folder = case.root / "model"
    if setup != "missing":
        folder.mkdir()
    if setup == "wrong_kind":
        (folder / "metadata.json").write_text(json.dumps({"model": "MnistConvVAE", "latent_dim": 20}))
    if setup == "truncated":
        (folder / "metadata.json").write_text(json.dumps({"model": "ConvVAE", "image_shape": [32, 32, 3],
                                                          "latent_dim": 8, "channels": [8, 16],
                                                          "dataset": "cifar10"}))
        (folder / "params").mkdir()
        (folder / "params" / "_METADATA").write_text("{")
    case.run("latent_arithmetic", "--checkpoint", str(folder), "--images", "0", "1", "--out", str(case.root / "o"))
    case.assert_refused(errors.CheckpointError, folder, named, out=case.root / "o")


def test_debug_shows_the_traceback(case):
    case.run("dino_diffusion", "--epochs", "0", "--debug")
    assert case.result.returncode != 0 and "Traceback" in case.result.stderr
    assert "ConfigError: --epochs 0" in case.result.stderr


@pytest.mark.skipif(not (REPO_ROOT.parent / "shared" / "data" / "mnist").is_dir(), reason="needs ../shared/data/mnist")
def test_truncated_epoch_checkpoint_with_resume_exits_cleanly(case):
    """An epoch checkpoint cut short: one line, and no shutdown tracebacks of the checkpointer's threads."""
    import jax.numpy as jnp

    from jaxgen.checkpoints import EpochCheckpointer

    out = case.root / "out"
    directory = out / "checkpoints" / "fc_100"
    checkpointer = EpochCheckpointer(directory)
    checkpointer.save(0, {"w": jnp.ones((64, 64))}, {"train": {}, "test": {}, "epoch_seconds": [1.0]})
    checkpointer.close()
    for path in sorted(p for p in (directory / "0").rglob("*") if p.is_file()):
        path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 3])  # every file cut to a third
    config = configs.load("mnist_vae", "quick").replace(train_examples=256, batch_size=128)
    (out / "run.json").write_text(json.dumps({"study": "mnist_vae", "state": "unfinished",
                                              "config": config.to_dict()}))
    case.env["JAXGEN_DATA_DIR"] = str(REPO_ROOT.parent / "shared" / "data")
    case.run("mnist_vae", "--quick", "--train-examples", "256", "--batch-size", "128", "--out", str(out),
             "--resume")
    case.assert_refused(errors.CheckpointError, directory, "--overwrite")
    assert "sys.meta_path" not in case.result.stderr


@pytest.mark.skipif(not (REPO_ROOT.parent / "shared" / "data" / "stl10").is_dir(), reason="needs ../shared/data/stl10")
def test_pair_index_outside_the_test_set_is_refused_before_training(case):
    case.env["JAXGEN_DATA_DIR"] = str(REPO_ROOT.parent / "shared" / "data")
    out = case.root / "out"
    case.run("vae_stl10", "--quick", "--dataset", "stl10_first37", "--interpolation-pairs", "0,999", "--out", str(out))
    case.assert_refused(errors.ConfigError, "--interpolation-pairs 0,999", "[0, 36]", out=out)


# ------------------------------------------------------------------------------------ stylegan_inversion

def face_png(path: Path, side: int = 64, colour=None) -> Path:
    """A usable target (seeded noise, `side` px), or a single-colour one."""
    import numpy as np
    from PIL import Image

    pixels = np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)
    image = Image.new("RGB", (side, side), colour) if colour else Image.fromarray(pixels)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


def stylegan_setup(root: Path, setup: str) -> tuple[list[str], list]:
    """(flags, texts the error names) of one bad stylegan_inversion input; targets are good unless bad."""
    good = ["--targets", str(face_png(root / "faces" / "good.png")), "--align", "off"]
    if setup == "missing_pickle":
        return ["--weights", "/nonexistent.pkl", *good], ["/nonexistent.pkl", "no such file"]
    if setup == "conditional":
        return ["--weights", "cifar10", *good], ["--weights cifar10", "class-conditional"]
    if setup == "folder_without_metadata":
        folder = root / "generator"
        folder.mkdir()
        (folder / "params.npz").write_bytes(b"not a generator")
        return ["--weights", str(folder), *good], [folder, "metadata.json"]
    if setup == "truncated_pickle":
        pickle_file = root / "stylegan2-ffhq-256x256.pkl"
        pickle_file.write_bytes(b"\x80\x02}q\x00(X\x04\x00\x00\x00G_ema" + bytes(200))  # cut after its start
        return ["--weights", str(pickle_file), *good], [pickle_file]
    missing, text, pixel, flat = root / "missing.png", root / "notes.png", root / "pixel.png", root / "flat.png"
    if setup == "no_target_exists":
        return ["--self-test", "--targets", str(missing), "/etc"], [missing, "/etc", "none of the 2"]
    if setup == "text_target":
        text.write_text("not an image")
        return ["--self-test", "--targets", str(text)], [text, "not a readable image"]
    if setup == "one_pixel_target":
        face_png(pixel, side=1)
        return ["--self-test", "--targets", str(pixel)], [pixel, "smaller than 32 px"]
    if setup == "single_colour_target":
        face_png(flat, colour=(90, 120, 200))
        return ["--self-test", "--targets", str(flat)], [flat, "single colour"]
    if setup == "zero_iterations":
        return ["--self-test", "--iterations", "0"], ["--iterations 0", "must be"]
    if setup == "crossover_k":
        return ["--self-test", "--crossover-k", "8"], ["--crossover-k 8", "8 w+ rows"]
    raise ValueError(setup)


@pytest.mark.parametrize("setup, kind", [
    ("missing_pickle", errors.WeightsError), ("conditional", errors.WeightsError),
    ("folder_without_metadata", errors.WeightsError), ("truncated_pickle", errors.WeightsError),
    ("no_target_exists", errors.ImageError),
    ("text_target", errors.ImageError), ("one_pixel_target", errors.ImageError),
    ("single_colour_target", errors.ImageError), ("zero_iterations", errors.ConfigError),
    ("crossover_k", errors.ConfigError)])
def test_stylegan_inversion_bad_input(case, setup, kind):
    """Each fails before an inversion is compiled (the crossover check after the self-test generator is made);
    the flags refused while parsing are checked in-process in test_configs."""
    flags, named = stylegan_setup(case.root, setup)
    out = case.root / "out"
    case.run("stylegan_inversion", "--quick", "--out", str(out), *flags)
    case.assert_refused(kind, *named, out=out)


def test_stylegan_inversion_out_holds_another_studys_results(case):
    out = case.root / "out"
    fake_finished_run(out, "mnist_vae")
    case.run("stylegan_inversion", "--self-test", "--quick", "--out", str(out))
    case.assert_refused(errors.OutputFolderError, out, "finished mnist_vae run", "--overwrite")


def test_stylegan_inversion_out_is_a_file(case):
    out = case.root / "results.txt"
    out.write_text("a file the user keeps")
    case.run("stylegan_inversion", "--self-test", "--quick", "--out", str(out))
    case.assert_refused(errors.OutputFolderError, out, "is a file")
