"""Shared test setup: the real data folder beside the repo, and a persistent JAX compilation cache."""
import os
from pathlib import Path

import jax

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
# One cache per pytest-xdist worker: JAX writes cache entries without a lock, so a worker could read
# another's half-written entry.
CACHE = REPO / ".pytest_cache" / "jax" / os.environ.get("PYTEST_XDIST_WORKER", "main")

if "JAXGEN_DATA_DIR" not in os.environ and SHARED_DATA.exists():
    os.environ["JAXGEN_DATA_DIR"] = str(SHARED_DATA)
# Subprocesses (the multi-device and study tests) share the cache through the environment.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(CACHE))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")
jax.config.update("jax_compilation_cache_dir", os.environ["JAX_COMPILATION_CACHE_DIR"])
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
