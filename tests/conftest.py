"""Shared test setup: the real data folder beside the repo (else small synthetic data for the study tests),
a local HTTP file server for download tests, and a persistent JAX compilation cache."""
import os
from pathlib import Path

import jax
import pytest

from jaxgen import cpu
from tests import local_server, synthetic_data

# The process settings a jaxgen entry point makes (importing jaxgen makes none), before any test starts JAX.
cpu.configure()

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
# One cache per pytest-xdist worker: JAX writes cache entries without a lock, so a worker could read
# another's half-written entry.
CACHE = REPO / ".pytest_cache" / "jax" / os.environ.get("PYTEST_XDIST_WORKER", "main")

if "JAXGEN_DATA_DIR" not in os.environ and SHARED_DATA.exists():
    os.environ["JAXGEN_DATA_DIR"] = str(SHARED_DATA)
REAL_DATA = Path(os.environ["JAXGEN_DATA_DIR"]) if "JAXGEN_DATA_DIR" in os.environ else None
# No test reaches the internet: a download that no test serves itself goes to a closed local port.
os.environ.setdefault("JAXGEN_MIRROR", local_server.refused_url())
# Subprocesses (the multi-device and study tests) share the cache through the environment.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(CACHE))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")
jax.config.update("jax_compilation_cache_dir", os.environ["JAX_COMPILATION_CACHE_DIR"])
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


@pytest.fixture
def file_server(tmp_path):
    """Start a local file server over tmp_path/"served": `file_server(mode)` -> FileServer (stopped after)."""
    served = tmp_path / "served"
    served.mkdir()
    servers = []

    def start(mode="normal"):
        servers.append(local_server.FileServer(served, mode).__enter__())
        return servers[-1]

    start.folder = served
    yield start
    for server in servers:
        server.__exit__(None, None, None)


@pytest.fixture
def real_data_dir():
    """The real data folder ($JAXGEN_DATA_DIR, else ../shared/data); checks of real bytes skip without it."""
    if REAL_DATA is None or not REAL_DATA.exists():
        pytest.skip("needs the real data files: set JAXGEN_DATA_DIR (CI points it at ../shared/data)")
    return REAL_DATA


@pytest.fixture(scope="session")
def synthetic_data_dir(tmp_path_factory):
    """A data folder of small synthetic datasets in the official layouts (see tests/synthetic_data.py)."""
    return synthetic_data.write_official_files(tmp_path_factory.mktemp("synthetic_data"))


@pytest.fixture(scope="module", autouse=True)
def study_data(request):
    """Study test modules (those using run_quick_study) run on the real data folder when there is one, else
    on the synthetic one, whose checksums then stand in the download table for the module."""
    if REAL_DATA is not None or not hasattr(request.module, "run_quick_study"):
        yield REAL_DATA
        return
    folder = request.getfixturevalue("synthetic_data_dir")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JAXGEN_DATA_DIR", str(folder))
        for name, entry in synthetic_data.registry_for(folder).items():
            patch.setitem(synthetic_data.downloads.REGISTRY, name, entry)
        yield folder
