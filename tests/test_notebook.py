"""notebooks/colab.ipynb executed cell by cell in a Jupyter kernel (nbclient), on CPU, offline: from this
checkout (its install cell skips pip and git), the flagship on MNIST with the --quick settings and fewer
images, the dino study --quick, the model restored from its export and its training checkpoint, and latent
arithmetic. Any cell's error fails the test. The notebook is committed with its outputs cleared."""
import json
import os

import nbformat
import pytest
from nbclient import NotebookClient

from jaxgen.data import downloads
from tests import synthetic_data
from tests.conftest import REAL_DATA, REPO

NOTEBOOK = REPO / "notebooks" / "colab.ipynb"


def test_the_notebook_is_committed_without_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(not cell.outputs and cell.execution_count is None for cell in code)


@pytest.fixture
def offline_data(tmp_path, monkeypatch):
    """The real data folder when it has MNIST; else the synthetic one, its files recorded as verified against
    the download table (in a user cache of the test's own), as the kernel's processes cannot be patched."""
    if REAL_DATA is not None and (REAL_DATA / "mnist").exists():
        return REAL_DATA
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    folder = synthetic_data.write_official_files(tmp_path / "data")
    for name, file in downloads.REGISTRY.items():
        path = folder / file.dataset / name
        if path.exists():
            downloads.remember_verified(path, file.known_hash)
    monkeypatch.setenv("JAXGEN_DATA_DIR", str(folder))
    return folder


def test_the_colab_notebook_runs_on_cpu_from_the_checkout(tmp_path, monkeypatch, offline_data):
    runs = tmp_path / "runs"
    for name, value in {"JAXGEN_NOTEBOOK_CHECKOUT": str(REPO), "JAXGEN_NOTEBOOK_DATASET": "mnist",
                        "JAXGEN_NOTEBOOK_VAE_FLAGS": "--train-examples 256 --test-examples 64",
                        "JAXGEN_NOTEBOOK_RUNS": str(runs), "JAX_PLATFORMS": "cpu",
                        "PYTHONPATH": str(REPO)}.items():
        monkeypatch.setenv(name, value)
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()  # raises on a cell's error
    text = "\n".join(output.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
                     for output in cell.outputs)
    images = sum("image/png" in output.get("data", {}) for cell in notebook.cells if cell.cell_type == "code"
                 for output in cell.outputs)
    assert "same parameters as the export: True" in text
    assert "cpu [CpuDevice(id=0)]" in text
    assert images >= 5 + 1 + 2  # the flagship's figures, the dino samples, both latent-arithmetic figures
    vae = json.loads((runs / "vae_mnist" / "results.json").read_text())
    assert vae["budget"] == "quick" and vae["train_examples"] == 256
    assert (runs / "dino" / "results.json").exists()
    assert (runs / "arithmetic" / "style.png").exists()
