"""Run a study's --quick budget into a temporary folder: on the real data folder when there is one, else on the
small synthetic data that tests/conftest.py lays out in the official file layouts (its `study_data` fixture)."""
import json

import pytest

from jaxgen import data


def run_quick_study(tmp_path_factory, study, dataset: str, *flags: str):
    """(out folder, results) of `study.main(['--quick', ...])`; skips the test only if a real data folder
    ($JAXGEN_DATA_DIR) lacks `dataset`."""
    try:
        data.load(dataset, "test", allow_download=False)
    except data.DataNotFoundError:
        pytest.skip(f"{dataset} is not in $JAXGEN_DATA_DIR (unset it to run on the synthetic data)")
    out = tmp_path_factory.mktemp(f"{study.NAME}_{dataset}")
    study.main(["--quick", "--out", str(out), *flags])
    return out, json.loads((out / "results.json").read_text())


def assert_report_shows_every_figure(out):
    report = (out / "report.md").read_text()
    figures = sorted(out.glob("*.png"))
    assert figures
    for figure in figures:
        assert f"({figure.name})" in report, figure.name
