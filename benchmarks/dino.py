"""Workload (3), the dino DDPM's training run against its PyTorch twin, in a process of its own set up
as the study sets up its own (`experiments.dino_diffusion.configure_process`: each computation on one
thread, and the CPU split into two devices that train data-parallel):

    python -m benchmarks.dino [--quick]

Prints the results row as one JSON line; benchmarks.run launches it.
"""
from __future__ import annotations

import argparse
import json
import os

import jax

from benchmarks import workloads
from experiments import dino_diffusion
from jaxgen import cpu


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run: benchmarks.run --quick")
    args = parser.parse_args(argv)
    row = workloads.dino_ddpm_run(workloads.QUICK if args.quick else workloads.FULL)
    print(json.dumps({**row, "pjrt_nproc": os.environ.get("PJRT_NPROC"), "devices": jax.device_count()}))


if __name__ == "__main__":
    cpu.configure()  # the process settings of a jaxgen entry point, before JAX starts
    dino_diffusion.configure_process([])  # one process
    main()
