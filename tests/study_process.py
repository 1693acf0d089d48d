"""`python -m tests.study_process STUDY FLAGS...`: run `experiments.STUDY` through its command's entry point,
as `python -m experiments.STUDY FLAGS...` does, in a process of a test. With JAXGEN_TEST_SYNTHETIC_DATA=1 the
data folder ($JAXGEN_DATA_DIR) holds tests/synthetic_data.py's files, whose checksums then stand in the
download table (as conftest.py's `study_data` fixture does inside the test process)."""
import importlib
import os
import sys

from experiments import common

if __name__ == "__main__":
    if os.environ.get("JAXGEN_TEST_SYNTHETIC_DATA") == "1":
        from pathlib import Path

        from tests import synthetic_data
        synthetic_data.downloads.REGISTRY.update(synthetic_data.registry_for(Path(os.environ["JAXGEN_DATA_DIR"])))
    study = importlib.import_module(f"experiments.{sys.argv[1]}")
    if hasattr(study, "configure_process"):  # the study's own process settings, as its command makes them
        study.configure_process(sys.argv[2:])
    common.entry_point(study.main, sys.argv[2:])
