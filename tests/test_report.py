"""experiments.report: one self-contained page of every run under a folder."""
import base64
import json
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from experiments import report
from experiments.common import markdown_table
from jaxgen.errors import ConfigError

REPO_ROOT = report.Path(__file__).resolve().parents[1]


def write_png(path, seed):
    pixels = np.random.default_rng(seed).integers(0, 256, (12, 20, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path.read_bytes()


def fake_run(folder, study, headline, figures, extra_figure=None, missing=None):
    """A run folder as a study writes it: results.json, report.md with a headline table, figures."""
    folder.mkdir(parents=True)
    written = {name: write_png(folder / name, i) for i, name in enumerate(figures)}
    if extra_figure:
        written[extra_figure] = write_png(folder / extra_figure, 99)
    links = "\n".join(f"![{name}]({name})" for name in figures + ([missing] if missing else []))
    (folder / "report.md").write_text(f"# The {study} study\n\nSome text with **bold** and `code`.\n\n"
                                      f"{headline}\n\n## Figures\n\n{links}\n")
    (folder / "results.json").write_text(json.dumps({"study": study, "budget": "quick", "runtime_seconds": 61.0,
                                                     "config": {"epochs": 1, "batch_size": 16, "channels": [8, 16]}}))
    return written


@pytest.fixture
def runs(tmp_path):
    root = tmp_path / "runs"
    tables = {
        "mnist_vae": markdown_table(["model", "neg. ELBO", "PSNR (dB)"], [["conv", 99.5, 14.2], ["fc_2d", 140.0, 11.0]]),
        "dino_diffusion": markdown_table(["variant", "MMD²", "Chamfer"], [["fourier", 0.01, 0.2]]),
    }
    figures = {
        "mnist_vae": fake_run(root / "mnist_vae", "mnist_vae", tables["mnist_vae"], ["a.png", "b.png"],
                              extra_figure="unlinked.png"),
        "dino_diffusion": fake_run(root / "nested" / "dino_quick", "dino_diffusion", tables["dino_diffusion"],
                                   ["samples.png"], missing="gone.png"),
    }
    # Folders a run keeps beside its results are not runs of their own.
    (root / "mnist_vae" / "checkpoints" / "x").mkdir(parents=True)
    (root / "mnist_vae" / "checkpoints" / "x" / "results.json").write_text("{}")
    return root, tables, figures


def embedded_images(page):
    return [base64.b64decode(data) for data in re.findall(r'src="data:image/png;base64,([^"]+)"', page)]


def test_page_holds_every_headline_table_and_every_figure_inline(runs):
    root, tables, figures = runs
    page, found = report.build_page(root)
    assert [run.folder.name for run in found] == ["mnist_vae", "dino_quick"]
    for study, table in tables.items():
        header = [cell.strip() for cell in table.splitlines()[0].strip("|").split("|")]
        assert "".join(f"<th>{h}</th>" for h in header) in page.replace("\n", ""), study
        first_row = [cell.strip() for cell in table.splitlines()[2].strip("|").split("|")]
        for cell in first_row:  # numbers right-aligned, words not
            number = cell[0].isdigit()
            assert (f'<td class="number">{cell}</td>' if number else f"<td>{cell}</td>") in page, cell
    # Every figure of every folder is on the page, byte for byte, linked or not; nothing points outside it.
    images = embedded_images(page)
    for study_figures in figures.values():
        for content in study_figures.values():
            assert content in images
    assert len(images) == sum(len(f) for f in figures.values())
    assert not re.search(r'(src|href)="(?!data:|#)', page)
    # A figure report.md links but the folder lacks is named, not silently dropped.
    assert "gone.png" in page and found[1].missing_figures == ["gone.png"]
    assert "<strong>bold</strong>" in page and "The mnist_vae study" in page


def test_command_writes_the_page_and_refuses_a_folder_without_runs(runs, tmp_path, capsys):
    root, _, _ = runs
    out = report.main([str(root)])
    assert out == root / "report.html" and out.read_text().startswith("<!DOCTYPE html>")
    assert "2 runs, 4 figures" in capsys.readouterr().out
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no study results"):
        report.main([str(tmp_path / "empty")])
    with pytest.raises(ConfigError, match="no such folder"):
        report.main([str(tmp_path / "absent")])


def test_command_line_error_is_one_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "experiments.report", str(tmp_path / "absent")],
                            capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
    assert result.returncode == 2 and result.stderr.strip().count("\n") == 0
    assert "absent: no such folder" in result.stderr and "Traceback" not in result.stderr
