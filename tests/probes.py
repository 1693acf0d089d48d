"""Running a probe, a short Python program, in a fresh process: settings that JAX or glibc read only at
start-up (XLA_FLAGS, the thread-pool and malloc variables) can be tested only there."""
import os
import subprocess
import sys

from jaxgen import cpu
from tests.conftest import REPO


def run_probe(code, extra_env, *args, xla_flags=None):
    """`python -c code *args` from the repository root, without the caller's XLA_FLAGS (or with
    `xla_flags`) and without the thread-pool and malloc variables jaxgen.cpu reads, plus `extra_env`;
    returns its output lines. Fails with the probe's error output if it fails."""
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS",) + cpu.MALLOC_ENV + cpu.THREAD_POOL_ENV}
    if xla_flags is not None:
        env["XLA_FLAGS"] = xla_flags
    done = subprocess.run([sys.executable, "-c", code, *args], env={**env, **extra_env}, cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()
