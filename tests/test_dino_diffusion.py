import json

import numpy as np
import pytest

from experiments import dino_diffusion
from experiments.configs.dino_diffusion import SHAPES, get_config
from jaxgen import data, ddpm
from jaxgen.errors import ConfigError

VARIANTS = ("no_time", "linear_time", "fourier")


@pytest.fixture(scope="module")
def datasaurus():
    try:
        data.load_datasaurus("dino")
    except data.DataNotFoundError:
        pytest.skip("the Datasaurus Dozen could not be loaded")


def run(out, *flags):
    dino_diffusion.main(["--quick", "--out", str(out), *flags])
    return json.loads((out / "results.json").read_text())


def test_quick_run_writes_every_key(tmp_path, datasaurus):
    results = run(tmp_path)
    assert list(results["shapes"]) == ["dino"]
    dino = results["shapes"]["dino"]
    for variant in VARIANTS:
        assert dino[variant]["final_test_loss"] > 0
        assert dino[variant]["mmd"] >= 0 and dino[variant]["chamfer"] > 0
        assert len(dino[variant]["history"]["test"]["loss"]) == get_config("quick").epochs
        assert dino[variant]["sampler_steps"] == 50
    assert dino["data_floor"]["chamfer"] > 0.05  # a held-out half: not the same points
    assert dino["num_points"] == 142 and dino["half_size"] == 71
    assert dino["splits"] == get_config("quick").num_samples // 71
    assert len(results["schedule"]["alpha_bars"]) == 51
    report = (tmp_path / "report.md").read_text()
    for figure in tmp_path.glob("*.png"):
        assert f"({figure.name})" in report
    # Resuming reuses the saved models (and their B matrices): identical numbers.
    again = run(tmp_path, "--resume")
    assert all(again["shapes"]["dino"][v]["mmd"] == dino[v]["mmd"] for v in VARIANTS)


def test_all_shapes_and_another_T(tmp_path, datasaurus):
    results = run(tmp_path, "--shape", "all", "--T", "10", "--beta-max", "0.1", "--epochs", "2",
                  "--steps-per-epoch", "4", "--num-samples", "142")
    assert list(results["shapes"]) == list(SHAPES) and len(SHAPES) == 13
    floors = set()
    for shape, entry in results["shapes"].items():
        for variant in VARIANTS:
            assert np.isfinite([entry[variant]["mmd"], entry[variant]["chamfer"]]).all(), shape
            assert entry[variant]["sampler_steps"] == 10
            assert len(entry[variant]["history"]["train"]["loss"]) == 2
        assert np.isfinite([entry["data_floor"]["mmd"], entry["data_floor"]["chamfer"]]).all()
        floors.add(entry["data_floor"]["chamfer"])
    assert len(floors) == 13  # each shape has its own floor
    schedule = results["schedule"]
    assert schedule["T"] == 10 and len(schedule["alpha_bars"]) == 11
    np.testing.assert_allclose(schedule["alpha_bars"], ddpm.linear_schedule(10, 1e-4, 0.1).alpha_bars, rtol=1e-6)
    assert results["config"]["shape"] == "all" and results["config"]["T"] == 10


def test_flags_are_checked_before_anything_runs(tmp_path):
    for flags, named in ((["--T", "1"], "--T"), (["--schedule", "sigmoid"], "--schedule"),
                         (["--shape", "trex"], "--shape"), (["--beta-min", "0.1", "--beta-max", "0.01"], "--beta-min"),
                         (["--schedule-sweep", "--shape", "all"], "--schedule-sweep")):
        with pytest.raises(ConfigError, match=named):
            dino_diffusion.main(["--quick", "--out", str(tmp_path / "never"), *flags])
        assert not (tmp_path / "never").exists()


def test_the_sweep_covers_the_assignment_settings():
    settings = dino_diffusion.sweep_settings(get_config())
    assert [s[2] for s in settings if s[0].startswith("T=")] == [10, 25, 50, 100, 200]
    linear_at_50 = {(s[3], s[4]) for s in settings if s[1] == "linear" and s[2] == 50}
    assert linear_at_50 == set(dino_diffusion.SCHEDULE_PAIRS)
    assert ("cosine", "cosine", 50) == settings[-1][:3]
    assert len(settings) == len({(s[1], s[2], s[3], s[4]) for s in settings})  # no setting trained twice
