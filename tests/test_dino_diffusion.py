import json

import pytest

from experiments import dino_diffusion
from experiments.configs.dino_diffusion import get_config
from jaxgen import data


def test_quick_run_writes_every_key(tmp_path):
    try:
        data.load_datasaurus("dino")
    except data.DataNotFoundError:
        pytest.skip("DatasaurusDozen.tsv not found: set JAXGEN_DATA_DIR (CI points it at ../shared/data)")
    dino_diffusion.main(["--quick", "--out", str(tmp_path)])
    results = json.loads((tmp_path / "results.json").read_text())
    for variant in ("no_time", "linear_time", "fourier"):
        assert results[variant]["final_test_loss"] > 0
        assert results[variant]["mmd"] >= 0 and results[variant]["chamfer"] > 0
        assert len(results[variant]["history"]["test"]["loss"]) == get_config("quick").epochs
    assert results["data_floor"]["mmd"] >= 0 and results["data_floor"]["chamfer"] >= 0
    assert results["data_floor"]["mmd"] < min(results[v]["mmd"] for v in ("no_time", "linear_time", "fourier"))
    assert results["num_points"] == 142
    report = (tmp_path / "report.md").read_text()
    for figure in tmp_path.glob("*.png"):
        assert f"({figure.name})" in report
    # Resuming reuses the saved models (and their B matrices): identical numbers.
    dino_diffusion.main(["--quick", "--out", str(tmp_path), "--resume"])
    again = json.loads((tmp_path / "results.json").read_text())
    assert all(again[v]["mmd"] == results[v]["mmd"] for v in ("no_time", "linear_time", "fourier"))
