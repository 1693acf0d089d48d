"""Process settings that make XLA:CPU training fast, applied when jaxgen is imported. Both are read
only at the start (XLA's flags when JAX starts its CPU backend, glibc's when it allocates), so import
jaxgen before the first JAX computation; settings the user made themselves are left alone."""
import ctypes
import os
import platform

YNN_FUSIONS_FLAG = "--xla_cpu_experimental_ynn_fusion_type"
# glibc's mallopt parameters (malloc.h) and the environment variables that set them at start-up.
M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
MALLOC_ENV = ("MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_")


def prefer_xla_convolutions() -> None:
    """XLA:CPU hands matmuls, reductions and convolutions to YNNPACK by default; its convolutions are
    the slow part of our conv models' steps. With XLA's own (Eigen) convolutions a 4x4 stride-2 conv
    layer's forward + backward runs ~1.7x faster (README, speed section); matmuls and reductions stay
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


def configure() -> None:
    prefer_xla_convolutions()
    keep_freed_memory()
