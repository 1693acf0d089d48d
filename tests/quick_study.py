"""Run a study's --quick budget into a temporary folder, or skip when its data is absent."""
import json

import pytest

from jaxgen import data


def run_quick_study(tmp_path_factory, study, dataset: str, *flags: str):
    """(out folder, results) of `study.main(['--quick', ...])`; skips the test if `dataset` is not found."""
    try:
        data.load(dataset, "test", allow_download=False)
    except data.DataNotFoundError:
        pytest.skip(f"{dataset} not found: set JAXGEN_DATA_DIR (CI points it at ../shared/data)")
    out = tmp_path_factory.mktemp(f"{study.NAME}_{dataset}")
    study.main(["--quick", "--out", str(out), *flags])
    return out, json.loads((out / "results.json").read_text())


def assert_report_shows_every_figure(out):
    report = (out / "report.md").read_text()
    figures = sorted(out.glob("*.png"))
    assert figures
    for figure in figures:
        assert f"({figure.name})" in report, figure.name
