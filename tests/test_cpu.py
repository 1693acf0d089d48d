"""jaxgen.cpu's settings: made by an entry point's one call (never by importing jaxgen), convolutions on XLA's
own kernels, matmuls on YNNPACK, and freed memory kept for reuse instead of page-faulted back in on every
step; on request, one thread per computation, the CPU split into devices, and the cores kept awake through a
data-parallel run."""
import os
import platform
import time

import pytest

from jaxgen import cpu
from tests.probes import run_probe

PLACEMENT_PROBE = """
import jax, jax.numpy as jnp, os
from jaxgen import distributed
from jaxgen.models.layers import conv_nhwc
distributed.configure_process()  # what an entry point calls first
x, k, w = jnp.ones((8, 32, 32, 32)), jnp.ones((3, 3, 32, 32)), jnp.ones((256, 256))
conv = jax.jit(lambda x, k: conv_nhwc(x, k, padding="SAME"))
dot = jax.jit(lambda w: w @ w)
print(os.environ["XLA_FLAGS"])
print("conv-ynn" if "__ynn_fusion" in conv.lower(x, k).compile().as_text() else "conv-xla")
print("dot-ynn" if "__ynn_fusion" in dot.lower(w).compile().as_text() else "dot-xla")
"""


# Page faults of writing a fresh 64 MB malloc block, after the same block size was allocated and freed.
FAULTS_PROBE = """
import ctypes, ctypes.util, resource, sys
if sys.argv[1] in ("import", "configure"):
    import experiments.common, jaxgen.train  # importing changes nothing
if sys.argv[1] == "configure":
    from jaxgen import cpu
    cpu.configure()
libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.malloc.restype = ctypes.c_void_p
size = 64 << 20
for _ in range(2):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    block = libc.malloc(size)
    ctypes.memset(block, 1, size)
    libc.free(ctypes.c_void_p(block))
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


IMPORT_PROBE = """
import os
before = dict(os.environ)
import experiments.common, jaxgen, jaxgen.distributed, jaxgen.train
print(dict(os.environ) == before)
"""


# What these probe inside XLA:CPU (YNNPACK fusions, the thread pool's thread names) is that of jaxlib 0.8.1 and
# later; older releases the package admits have neither (their speed settings are then simply not made).
NEEDS_CURRENT_XLA = pytest.mark.skipif(cpu.jaxlib_version() < cpu.YNN_FUSIONS_SINCE,
                                       reason="probes XLA:CPU internals of jaxlib >= 0.8.1")


def test_importing_jaxgen_changes_nothing_in_the_process():
    assert run_probe(IMPORT_PROBE, {}, xla_flags="") == ["True"]


@NEEDS_CURRENT_XLA
def test_configuring_moves_convolutions_off_ynnpack_and_keeps_user_flags():
    flags, conv, dot = run_probe(PLACEMENT_PROBE, {}, xla_flags="--xla_force_host_platform_device_count=2")
    assert flags.startswith("--xla_force_host_platform_device_count=2 ")  # the user's flags are kept
    assert (conv, dot) == ("conv-xla", "dot-ynn")


@NEEDS_CURRENT_XLA
def test_a_user_setting_of_the_ynn_flag_wins():
    user_flag = "--xla_cpu_experimental_ynn_fusion_type=individual_dot,individual_convolution,reduce"
    flags, conv, dot = run_probe(PLACEMENT_PROBE, {}, xla_flags=user_flag)
    assert flags == user_flag
    assert (conv, dot) == ("conv-ynn", "dot-ynn")


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="a glibc setting")
def test_configuring_keeps_freed_memory_for_reuse():
    pages = (64 << 20) // 4096
    fresh = int(run_probe(FAULTS_PROBE, {}, "plain")[0])
    imported = int(run_probe(FAULTS_PROBE, {}, "import")[0])
    reused = int(run_probe(FAULTS_PROBE, {}, "configure")[0])
    user_choice = int(run_probe(FAULTS_PROBE, {"MALLOC_TRIM_THRESHOLD_": "131072"}, "configure")[0])
    assert fresh > pages // 2 and user_choice > pages // 2  # glibc's default: fresh mmap pages each time
    assert imported > pages // 2  # importing jaxgen leaves glibc's setting alone
    assert reused < pages // 20


# XLA's CPU worker threads after one computation, in a fresh process; with "imports", the setting is made
# after importing every module of jaxgen and the studies, as `python -m experiments.dino_diffusion` makes it
# after its imports: none may start JAX's backend.
THREADS_PROBE = """
import importlib, os, pkgutil, sys
if sys.argv[1] == "imports":
    import experiments, jaxgen, jaxgen.models
    for package in (jaxgen, jaxgen.models, experiments):
        for module in pkgutil.iter_modules(package.__path__):
            importlib.import_module(f"{package.__name__}.{module.name}")
from jaxgen import cpu
print(cpu.run_each_computation_on_one_thread() if sys.argv[1] != "default" else None)
import jax, jax.numpy as jnp
jax.block_until_ready(jnp.ones(8) + 1)
names = [open(f"/proc/self/task/{task}/comm").read().strip() for task in os.listdir("/proc/self/task")]
print(names.count("tf_XLAEigen"))
"""


def _xla_threads(mode, extra_env=None):
    applied, threads = run_probe(THREADS_PROBE, extra_env or {}, mode)
    return applied, int(threads)


@NEEDS_CURRENT_XLA
@pytest.mark.skipif(platform.system() != "Linux", reason="counts threads in /proc")
def test_one_thread_per_computation_reaches_xla_and_respects_the_user():
    assert _xla_threads("setting") == ("True", 1)
    assert _xla_threads("imports") == ("True", 1)  # importing jaxgen or a study does not start JAX's backend
    assert _xla_threads("setting", {"PJRT_NPROC": "3"}) == ("False", 3)  # the user's choice is kept
    assert _xla_threads("default") == ("None", max(1, len(os.sched_getaffinity(0))))  # else one per core


DEVICES_PROBE = """
from jaxgen import cpu
print(cpu.split_into_devices(2))
import jax
print(jax.device_count())
"""


def test_splitting_the_cpu_into_devices_reaches_xla_and_respects_the_user():
    assert run_probe(DEVICES_PROBE, {}, xla_flags="") == ["True", "2"]
    assert run_probe(DEVICES_PROBE, {}, xla_flags=f"{cpu.DEVICE_COUNT_FLAG}=3") == ["False", "3"]


class _Device:
    def __init__(self, platform):
        self.platform = platform


def _state(pid):
    """The process's state letter (R running, S sleeping, Z exited but not yet reaped), or None if gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return None


@pytest.mark.skipif(platform.system() != "Linux", reason="SCHED_IDLE and /proc are Linux's")
def test_cores_kept_awake_spin_at_idle_priority_only_while_it_lasts(monkeypatch):
    monkeypatch.delenv(cpu.KEEP_AWAKE_ENV, raising=False)
    with cpu.cores_kept_awake([_Device("cpu"), _Device("cpu"), _Device("gpu")]) as spinners:
        assert len(spinners) == 2  # one per CPU device
        deadline = time.monotonic() + 10
        while any(os.sched_getscheduler(pid) != os.SCHED_IDLE for pid in spinners) and time.monotonic() < deadline:
            time.sleep(0.01)  # each sets its own policy first thing
        assert all(os.sched_getscheduler(pid) == os.SCHED_IDLE for pid in spinners)
        assert all(_state(pid) == "R" for pid in spinners)
    assert all(_state(pid) is None for pid in spinners)  # killed and reaped
    with cpu.cores_kept_awake([_Device("cpu")]) as spinners:
        assert spinners == []  # one device has no one to wait for
    monkeypatch.setenv(cpu.KEEP_AWAKE_ENV, "0")
    with cpu.cores_kept_awake([_Device("cpu")] * 2) as spinners:
        assert spinners == []


ORPHAN_PROBE = """
import os
from jaxgen import cpu
class Device: platform = "cpu"
with cpu.cores_kept_awake([Device(), Device()]) as spinners:
    print(*spinners, flush=True)
    os._exit(0)  # no clean-up: the spinners must notice on their own
"""


@pytest.mark.skipif(platform.system() != "Linux", reason="SCHED_IDLE and /proc are Linux's")
def test_spinners_end_when_their_process_dies_without_cleaning_up():
    spinners = [int(pid) for pid in run_probe(ORPHAN_PROBE, {})[0].split()]
    assert len(spinners) == 2
    deadline = time.monotonic() + 10
    while any(_state(pid) not in (None, "Z") for pid in spinners) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(_state(pid) in (None, "Z") for pid in spinners)
