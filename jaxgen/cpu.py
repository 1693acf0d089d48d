"""Process settings that make XLA:CPU training fast. Importing jaxgen applies none of them: `configure` is
made by the entry points (through `jaxgen.distributed.configure_process`: the studies' commands, the
benchmarks, the tests; a notebook or a program of one's own may call it too);
`run_each_computation_on_one_thread` and `split_into_devices` are for programs of small computations
only. All are read only at the start (XLA's when JAX starts its CPU backend, glibc's when it allocates),
so call them before the first JAX computation; settings the user made themselves are left alone.
`cores_kept_awake` is for the span of a data-parallel run on CPU devices."""
import contextlib
import ctypes
import os
import platform
import subprocess
import sys

YNN_FUSIONS_FLAG = "--xla_cpu_experimental_ynn_fusion_type"
YNN_FUSIONS_SINCE = (0, 8, 1)  # the first jaxlib whose XLA knows YNN_FUSIONS_FLAG
DEVICE_COUNT_FLAG = "--xla_force_host_platform_device_count"
# glibc's mallopt parameters (malloc.h) and the environment variables that set them at start-up.
M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
MALLOC_ENV = ("MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_")
# XLA sizes its CPU client's thread pools from these (the first one set), else from the core count.
THREAD_POOL_ENV = ("PJRT_NPROC", "NPROC")
KEEP_AWAKE_ENV = "JAXGEN_KEEP_CORES_AWAKE"
# A busy loop at SCHED_IDLE, the lowest priority there is (it runs only on a core nothing else wants),
# that ends soon after its parent (argv[1]) does.
_SPINNER = """
import os, sys
os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
parent = int(sys.argv[1])
while os.getppid() == parent:
    for _ in range(100_000):
        pass
"""


def _add_xla_flag(flag: str, value) -> bool:
    """Append `flag=value` to XLA_FLAGS unless the user set that flag; returns whether it did."""
    flags = os.environ.get("XLA_FLAGS", "")
    if flag in flags:
        return False
    os.environ["XLA_FLAGS"] = f"{flags} {flag}={value}".strip()
    return True


def prefer_xla_convolutions() -> None:
    """XLA:CPU hands matmuls, reductions and convolutions to YNNPACK by default; its convolutions are
    the slow part of our conv models' steps. With XLA's own (Eigen) convolutions a 4x4 stride-2 conv
    layer's forward + backward runs ~1.5x faster (benchmarks/NOTES.md); matmuls and reductions stay
    on YNNPACK. GPU and TPU compilers ignore the flag. jaxlib before 0.8.1 has no such flag, and XLA
    aborts on a flag it does not know, so it is set only from that release on."""
    if jaxlib_version() >= YNN_FUSIONS_SINCE:
        _add_xla_flag(YNN_FUSIONS_FLAG, "individual_dot,reduce")


def jaxlib_version() -> tuple[int, ...]:
    """The installed jaxlib's (major, minor, patch), read from its metadata (importing it would start JAX)."""
    from importlib.metadata import PackageNotFoundError, version
    try:
        return tuple(int(part) for part in version("jaxlib").split(".")[:3] if part.isdigit())
    except PackageNotFoundError:  # a jaxlib built from source without metadata: assume a current one
        return (999,)


def keep_freed_memory() -> bool:
    """XLA:CPU allocates each call's buffers (tens of MB per conv training step) with malloc, and glibc
    serves blocks that large with fresh mmap pages and unmaps them when freed, so every step
    page-faults them back in, each page zeroed by the kernel: ~20% of a conv VAE step. Serving them
    from the heap and never trimming it lets the next step reuse the memory (the process keeps its
    peak footprint, as a caching allocator would). glibc (Linux) only, and not when the user set glibc's
    variables or JAXGEN_KEEP_FREED_MEMORY=0; returns whether it applied."""
    if os.environ.get("JAXGEN_KEEP_FREED_MEMORY") == "0" or any(v in os.environ for v in MALLOC_ENV):
        return False
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(None)  # the process's own symbols, glibc's among them (no library search at import)
    return bool(libc.mallopt(M_MMAP_MAX, 0) and libc.mallopt(M_TRIM_THRESHOLD, 2**31 - 1))


def run_each_computation_on_one_thread() -> bool:
    """For a program whose computations are all small, like the dino DDPM study's (an MLP on 256 points,
    ~85 operations of a few microseconds per training step): start JAX's CPU backend with no intra-op
    thread pool (PJRT_NPROC=0), so one worker thread runs each computation's operations one after
    another. With a pool of one thread per core XLA spreads those operations over the cores, and the
    hand-offs cost more than the second core gives: the dino training run is ~1.3x faster without them
    (benchmarks/NOTES.md), with bit-for-bit the same losses. Process-wide, so not for programs with big
    convolutions or matmuls (the conv steps run ~2x slower on one thread); call it first thing in the
    program. Not applied when the user set PJRT_NPROC or NPROC; returns whether it applied."""
    if any(name in os.environ for name in THREAD_POOL_ENV):
        return False
    os.environ["PJRT_NPROC"] = "0"
    return True


def split_into_devices(count: int) -> bool:
    """Make the CPU `count` XLA devices. Each device runs its computations on a thread of its own, so a
    data-parallel program of small computations (one slice of each batch per device, like the dino
    study's) keeps `count` cores busy where one device, with or without the intra-op pool, keeps one
    (benchmarks/NOTES.md). Process-wide, for such programs only; call it first thing in the program.
    Not applied when the user set the flag; returns whether it applied."""
    return _add_xla_flag(DEVICE_COUNT_FLAG, count)


@contextlib.contextmanager
def cores_kept_awake(devices):
    """While it lasts, one busy loop per CPU device in `devices` at idle priority, so that no core halts
    between a data-parallel step's computations. Why: XLA:CPU's all-reduce blocks a device's thread until
    the other devices arrive, and on a VM whose idle cores halt at once (this one's do: `haltpoll` with
    `guest_halt_poll_ns` 0) waking it takes tens of microseconds, where a busy core switches at once: the dino
    study's per-step all-reduce of 20,803 numbers took 85 us in a loop of all-reduces alone, 19 with the
    cores kept awake (benchmarks/NOTES.md). OpenMP runtimes, PyTorch's among them, spin for the same
    reason. The loops give way to any other work at once. Yields their process ids; a no-op (no ids)
    with fewer than two CPU devices, off Linux, or with JAXGEN_KEEP_CORES_AWAKE=0."""
    count = sum(device.platform == "cpu" for device in devices)
    if count < 2 or not hasattr(os, "SCHED_IDLE") or os.environ.get(KEEP_AWAKE_ENV) == "0":
        yield []
        return
    spinners = []
    try:
        for _ in range(count):
            spinners.append(subprocess.Popen([sys.executable, "-S", "-c", _SPINNER, str(os.getpid())]))
        yield [spinner.pid for spinner in spinners]
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()


def configure() -> None:
    """The settings every jaxgen program wants: XLA's own convolution kernels, and freed memory kept for
    reuse. Call before the first JAX computation (later, they have no effect)."""
    prefer_xla_convolutions()
    keep_freed_memory()
