"""The Datasaurus Dozen (Matejka and Fitzmaurice, CHI 2017): 13 point sets of 142 (x, y) points each.

The long-format TSV ships inside the package (64 KB, MIT, see datasaurus_dozen/LICENSE), so the dino
study needs no data folder and no network. A DatasaurusDozen.tsv in the data folder is read instead.
"""
from __future__ import annotations

import csv
import io
import os
from importlib import resources
from pathlib import Path

import numpy as np

from jaxgen.data.downloads import CorruptFileError
from jaxgen.errors import ConfigError

DATASETS = ("away", "bullseye", "circle", "dino", "dots", "h_lines", "high_lines", "slant_down", "slant_up",
            "star", "v_lines", "wide_lines", "x_shape")
EMBEDDED = "datasaurus_dozen/DatasaurusDozen.tsv"


def _read_text(data_dir: str | os.PathLike | None) -> tuple[str, str]:
    """(TSV text, where it came from): the data folder's copy when there is one, else the embedded file."""
    if data_dir:
        for path in (Path(data_dir) / "datasaurus" / "DatasaurusDozen.tsv", Path(data_dir) / "DatasaurusDozen.tsv"):
            if path.exists():
                return path.read_text(), str(path)
    return resources.files("jaxgen.data").joinpath(EMBEDDED).read_text(), f"jaxgen.data:{EMBEDDED}"


def load_datasaurus(dataset: str = "dino", data_dir: str | os.PathLike | None = None) -> np.ndarray:
    """The (x, y) points of one Datasaurus Dozen dataset, float32 (N, 2)."""
    if dataset not in DATASETS:
        raise ConfigError(f"no Datasaurus dataset {dataset!r}; choose from {', '.join(DATASETS)}")
    text, where = _read_text(data_dir or os.environ.get("JAXGEN_DATA_DIR"))
    rows = [r for r in csv.DictReader(io.StringIO(text), delimiter="\t") if r.get("dataset") == dataset]
    if not rows:
        raise CorruptFileError(f"{where} has no rows for dataset {dataset!r}: not the Datasaurus Dozen "
                               "TSV (columns dataset, x, y)")
    return np.array([[float(r["x"]), float(r["y"])] for r in rows], dtype=np.float32)
