"""Process settings that make XLA:CPU training fast: `configure` is applied when jaxgen is imported;
`run_each_computation_on_one_thread` is for programs of small computations only. All are read only at
the start (XLA's when JAX starts its CPU backend, glibc's when it allocates), so import jaxgen (and call
the latter) before the first JAX computation; settings the user made themselves are left alone."""
import ctypes
import os
import platform

YNN_FUSIONS_FLAG = "--xla_cpu_experimental_ynn_fusion_type"
# glibc's mallopt parameters (malloc.h) and the environment variables that set them at start-up.
M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
MALLOC_ENV = ("MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_")
# XLA sizes its CPU client's thread pools from these (the first one set), else from the core count.
THREAD_POOL_ENV = ("PJRT_NPROC", "NPROC")


def prefer_xla_convolutions() -> None:
    """XLA:CPU hands matmuls, reductions and convolutions to YNNPACK by default; its convolutions are
    the slow part of our conv models' steps. With XLA's own (Eigen) convolutions a 4x4 stride-2 conv
    layer's forward + backward runs ~1.5x faster (benchmarks/NOTES.md); matmuls and reductions stay
    on YNNPACK. GPU and TPU compilers ignore the flag."""
    flags = os.environ.get("XLA_FLAGS", "")
    if YNN_FUSIONS_FLAG not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} {YNN_FUSIONS_FLAG}=individual_dot,reduce".strip()


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


def configure() -> None:
    prefer_xla_convolutions()
    keep_freed_memory()
