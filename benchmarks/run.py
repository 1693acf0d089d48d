"""Speed against PyTorch, side by side: `python -m benchmarks.run [--only NAME ...] [--quick]`.

Each workload runs its jaxgen version and an equivalent PyTorch model (same layers, parameter count, batch
size and optimizer) in one process (this one, or for the dino run one set up as its study's), the two
taking turns for a few rounds; the table gives both rates and their ratio (jaxgen / PyTorch, higher is
better) with the range of the rounds' ratios, and benchmarks/results.json (results_gpu.json on a GPU)
keeps them with the machine they ran on and the share of its CPU that went elsewhere meanwhile
(benchmarks/contention.py; the table warns when it is noticeable).
Ratios are comparable across machines; absolute rates only on the same one.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax
import torch
from jax.experimental.compilation_cache import compilation_cache

from benchmarks import contention, inversion, stylegan, workloads
from jaxgen import cpu

REPO = Path(__file__).resolve().parent.parent
WORKLOADS = ("mnist_conv_vae_step", "cifar_conv_ae_step", "dino_ddpm_run", "mnist_conv_vae_epoch", "inversion_step",
             "scaling")
# Run by default only on a GPU (benchmarks/stylegan.py); --only runs them anywhere.
GPU_WORKLOADS = ("stylegan2_step", "stylegan_inversion")


def run_module(module: str, flags, env=None) -> dict:
    """Run `python -m module *flags` from the repository root in a fresh process (some settings are read
    only when JAX starts) and return the JSON object its last output line prints; earlier lines (warnings)
    are passed on."""
    done = subprocess.run([sys.executable, "-m", module, *flags], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})})
    if done.returncode:
        raise RuntimeError(f"python -m {module} {' '.join(flags)} failed:\n{done.stderr[-3000:]}")
    *notes, result = done.stdout.strip().splitlines()
    for note in notes:
        print(note, flush=True)
    return json.loads(result)


def scaling(quick: bool) -> dict:
    """Throughput and loss curves of the same training on 1 and on 8 forced CPU devices."""
    flags = ["--images", "2048", "--epochs", "2"] if quick else ["--images", "16384", "--epochs", "3"]
    runs = {devices: run_module("benchmarks.scaling", flags,
                                {"XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
                                 "JAX_PLATFORMS": "cpu"})  # CPU devices, also where a GPU is present
            for devices in (1, 8)}
    one, eight = runs[1], runs[8]
    gap = max(abs(a - b) / abs(a) for a, b in zip(one["train_loss"], eight["train_loss"]))
    return {"workload": "scaling", "unit": "images/s", "jaxgen": eight["images_per_second"],
            "pytorch": None, "ratio": None, "one_device": one["images_per_second"],
            "eight_devices": eight["images_per_second"], "loss_curve_max_relative_gap": gap,
            "train_loss_one_device": one["train_loss"], "train_loss_eight_devices": eight["train_loss"]}


def run(names, budget, quick: bool) -> list[dict]:
    rows = []
    for name in names:
        print(f"running {name} ...", flush=True)
        started, before = time.perf_counter(), contention.now()
        if name == "mnist_conv_vae_step":
            row = workloads.mnist_vae_step(budget)
        elif name == "cifar_conv_ae_step":
            row = workloads.cifar_ae_step(budget)
        elif name == "dino_ddpm_run":
            row = run_module("benchmarks.dino", ["--quick"] if quick else [])  # as the study runs: its own process
        elif name == "mnist_conv_vae_epoch":
            row = workloads.mnist_vae_epoch(budget)
        elif name == "stylegan2_step":
            row = stylegan.stylegan2_step(stylegan.QUICK if quick else stylegan.FULL)
        elif name == "inversion_step":  # inversion_step_256 (32 with --quick), on a GPU also _1024
            row = inversion.inversion_step(inversion.QUICK if quick else inversion.FULL, stylegan.gpu_available())
        elif name == "stylegan_inversion":
            row = stylegan.stylegan_inversion(stylegan.QUICK if quick else stylegan.FULL)
        else:
            row = scaling(quick)
        conditions = {"wall_seconds": round(time.perf_counter() - started, 1),  # compilation and warm-up included
                      **contention.shares(before, contention.now(), os.cpu_count())}
        for produced in row if isinstance(row, list) else [row]:  # stylegan2_step, inversion_step: one row per size
            produced.update(conditions)
            rows.append(produced)
            print(format_row(produced), flush=True)
            if note := contention.warning(produced):
                print(note, flush=True)
    return rows


@contextlib.contextmanager
def compilation_cache_for_this_run():
    """A fresh JAX compilation cache for this invocation (here and in the processes it starts), unless
    one is set already: (4) and the scaling run train the program (1) compiled, and read it from the cache
    instead of compiling it again (~5 s each), while every compile_seconds reported is still a real one."""
    if jax.config.jax_compilation_cache_dir or os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        yield
        return
    with tempfile.TemporaryDirectory(prefix="jaxgen-benchmark-xla-") as directory:
        os.environ["JAX_COMPILATION_CACHE_DIR"] = directory
        jax.config.update("jax_compilation_cache_dir", directory)
        compilation_cache.reset_cache()  # JAX reads the setting at its first compile, which may have been earlier
        try:
            yield
        finally:
            jax.config.update("jax_compilation_cache_dir", None)
            compilation_cache.reset_cache()  # or later compiles in this process would use the removed folder
            del os.environ["JAX_COMPILATION_CACHE_DIR"]


def format_row(row) -> str:
    if row["workload"] == "scaling":
        return (f"{'scaling (1 -> 8 CPU devices)':32s} {row['one_device']:10.1f} -> {row['eight_devices']:.1f} "
                f"{row['unit']}; loss curves agree to {row['loss_curve_max_relative_gap']:.1e} (relative)")
    extra = f"  (jaxgen compile {row['compile_seconds']:.1f} s)" if "compile_seconds" in row else ""
    if row["pytorch"] is None:
        return f"{row['workload']:32s} {row['jaxgen']:10.1f} {'-':>10s} {'-':>7s}  {row['unit']}{extra}"
    if "round_ratios" in row:
        extra += f"  (rounds {min(row['round_ratios']):.2f}-{max(row['round_ratios']):.2f})"
    if "share_of_step_rate" in row:
        extra += f"  (epoch / pure-step rate {row['share_of_step_rate']:.2f})"
    return f"{row['workload']:32s} {row['jaxgen']:10.1f} {row['pytorch']:10.1f} {row['ratio']:7.2f}  {row['unit']}{extra}"


def share_the_gpu() -> None:
    """Where a GPU is present both libraries use it, one after the other: keep JAX from taking 75% of its
    memory up front (unless the user set it), and let PyTorch's float32 matmuls use the tensor cores
    (TF32), as XLA's do by default and PyTorch's convolutions do, so both sides do the same arithmetic."""
    os.environ.setdefault("XLA_PYTHON_CLIENT_MEM_FRACTION", "0.45")
    torch.backends.cuda.matmul.allow_tf32 = True


def merged_rows(out: Path, header: dict, rows: list[dict]) -> list[dict]:
    """`rows` after the rows of an earlier results file at `out` with the same header (machine and budget)
    that they do not replace (same workload name), so that `--only` re-measures some workloads and keeps
    the rest."""
    try:
        earlier = json.loads(out.read_text())
    except (OSError, ValueError):
        return rows
    if any(earlier.get(key) != value for key, value in header.items()):
        return rows
    fresh = {row["workload"] for row in rows}
    return [row for row in earlier["rows"] if row["workload"] not in fresh] + rows


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=WORKLOADS + GPU_WORKLOADS, default=None,
                        help=f"run just these workloads (default: all; {', '.join(GPU_WORKLOADS)} only on a GPU)")
    parser.add_argument("--quick", action="store_true", help="short measurements: a smoke test of every workload")
    parser.add_argument("--out", default=None,
                        help="results file (default benchmarks/results.json, results_gpu.json on a GPU; "
                             "results_quick.json with --quick); --only keeps the file's other rows from the same machine")
    args = parser.parse_args(argv)
    budget = workloads.QUICK if args.quick else workloads.FULL
    share_the_gpu()
    machine = workloads.machine()
    print(f"machine: {machine}")
    print(f"{'workload':32s} {'jaxgen':>10s} {'PyTorch':>10s} {'ratio':>7s}")
    default = WORKLOADS + (GPU_WORKLOADS if stylegan.gpu_available() else ())
    with compilation_cache_for_this_run():
        rows = run(args.only or default, budget, args.quick)
    platform = "" if machine["platform"] == "cpu" else f"_{machine['platform']}"
    out = Path(args.out or REPO / "benchmarks" / ("results_quick.json" if args.quick else f"results{platform}.json"))
    header = {"machine": machine, "budget": "quick" if args.quick else "full"}
    if args.only:
        rows = merged_rows(out, header, rows)
    out.write_text(json.dumps({**header, "rows": rows}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    cpu.configure()  # the process settings of a jaxgen entry point, before JAX starts
    main()
