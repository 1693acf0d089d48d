"""StyleGAN2 workloads for an accelerator: the generator's forward + backward pass against NVIDIA's
PyTorch code (workload 5) and the inversion timing (1,000 w+ iterations of 20 targets at 1024 px with
MSE + LPIPS, jaxgen only).

They run by default only when a GPU is present. On a CPU, `--only stylegan2_step stylegan_inversion
--quick` runs them at 32 px: the same code, as a smoke test. Both sides use the same weights: the
PyTorch generator is pickled as the official releases are and converted with `jaxgen.stylegan.convert`.
"""
from __future__ import annotations

import pickle
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import torch

from benchmarks import torch_models
from benchmarks.workloads import alternated_row, alternate, jax_parameter_count, torch_device, torch_synchronize
from jaxgen.stylegan import invert as inversion
from jaxgen.stylegan.convert import convert
from jaxgen.stylegan.generator import StyleGAN2Config, load_generator
from jaxgen.stylegan.perceptual import load_lpips_vgg


@dataclass(frozen=True)
class StyleGANBudget:
    step_batches: tuple[tuple[int, int], ...] = ((256, 16), (1024, 4))  # (resolution, batch)
    channel_max: int = 512  # config F
    seconds: float = 10.0  # per side, over all rounds
    rounds: int = 5
    inversion_resolution: int = 1024
    inversion_targets: int = 20
    inversion_iterations: int = 1000
    lpips_resolution: int = 256


FULL = StyleGANBudget()
# The CPU smoke test: a 32 px generator with at most 64 channels, tiny batches, a few iterations.
QUICK = StyleGANBudget(step_batches=((32, 4),), channel_max=64, seconds=1.0, rounds=2, inversion_resolution=32,
                       inversion_targets=2, inversion_iterations=10, lpips_resolution=64)


def gpu_available() -> bool:
    return jax.default_backend() == "gpu" and torch.cuda.is_available()


def official_and_converted(resolution: int, channel_max: int, folder: Path, seed: int = 0):
    """(PyTorch generator, jaxgen module, jaxgen variables) with the same seeded weights, config F at
    `resolution` (channel_base 32768, 8 mapping layers, no clamp) with at most `channel_max` channels."""
    official = torch_models.official_stylegan2_generator(
        StyleGAN2Config(img_resolution=resolution, channel_max=channel_max), seed)
    with open(folder / "network.pkl", "wb") as file:  # as the official releases are written
        pickle.dump({"G_ema": official}, file)
    convert(folder / "network.pkl", folder / "flax")
    module, variables = load_generator(folder / "flax")
    return official, module, variables


def seeded_targets(module, variables, batch: int):
    """Targets the generator can reach: its images of seeded z, NHWC in [-1, 1]."""
    z = jax.random.normal(jax.random.key(1), (batch, module.config.z_dim))
    return jax.jit(lambda v, z: module.apply(v, z, noise_mode="const"))(variables, z)


def jaxgen_generator_call(module, variables, batch: int) -> dict:
    """A blocking forward + backward pass (gradients of mean(G(z)^2) for every weight), compiled and
    warmed up."""
    z = jax.random.normal(jax.random.key(0), (batch, module.config.z_dim))

    @jax.jit
    def forward_backward(params, z):
        def loss(params):
            images = module.apply({"params": params, "buffers": variables["buffers"]}, z, noise_mode="const")
            return jnp.mean(jnp.square(images))
        return jax.value_and_grad(loss)(params)

    def call():
        jax.block_until_ready(forward_backward(variables["params"], z))

    started = time.perf_counter()
    call()
    compile_seconds = time.perf_counter() - started
    call()
    return {"call": call, "compile_seconds": compile_seconds}


def torch_generator_call(official, batch: int):
    device = torch_device()
    official = official.to(device).train().requires_grad_(True)
    z = torch.randn(batch, official.z_dim, generator=torch.Generator().manual_seed(0)).to(device)

    def call():
        official.zero_grad(set_to_none=True)
        official(z, None, noise_mode="const").square().mean().backward()
        torch_synchronize()

    for _ in range(3):
        call()
    return call


def stylegan2_step(budget: StyleGANBudget) -> list[dict]:
    """One row per (resolution, batch): forward + backward passes per second, jaxgen vs PyTorch."""
    rows = []
    for resolution, batch in budget.step_batches:
        with tempfile.TemporaryDirectory() as folder:
            official, module, variables = official_and_converted(resolution, budget.channel_max, Path(folder))
        counts = {"jaxgen": jax_parameter_count(variables),
                  "pytorch": sum(p.numel() for p in official.parameters())}
        if counts["jaxgen"] != counts["pytorch"]:
            raise AssertionError(f"stylegan2 {resolution}: parameter counts differ {counts}")
        jaxgen = jaxgen_generator_call(module, variables, batch)
        rates = alternate(jaxgen["call"], torch_generator_call(official, batch), budget.rounds,
                          budget.seconds / budget.rounds)
        rows.append(alternated_row(f"stylegan2_step_{resolution}", "fwd+bwd/s", rates,
                                   compile_seconds=jaxgen["compile_seconds"], parameters=counts["jaxgen"],
                                   batch_size=batch, resolution=resolution,
                                   pytorch_cuda_ops=torch_models.official_cuda_ops_loaded()))
    return rows


def stylegan_inversion(budget: StyleGANBudget) -> dict:
    """Seconds for `inversion_iterations` Adam steps of `inversion_targets` targets in w+ with
    MSE + LPIPS (weight 1, at `lpips_resolution`), compilation excluded."""
    resolution = budget.inversion_resolution
    with tempfile.TemporaryDirectory() as folder:
        _, module, variables = official_and_converted(resolution, budget.channel_max, Path(folder))
    targets = seeded_targets(module, variables, budget.inversion_targets)
    loss = inversion.InversionLoss(lpips_weight=1.0, lpips_resolution=budget.lpips_resolution)
    lpips_variables = load_lpips_vgg()

    def invert(iterations):
        settings = inversion.InversionSettings(iterations=iterations, steps_per_call=min(50, iterations))
        return inversion.invert(module, variables, targets, "w_plus", loss, settings, lpips_variables)

    started = time.perf_counter()
    invert(min(50, budget.inversion_iterations))  # compiles the program of 50 steps that the timed run reuses
    compile_seconds = time.perf_counter() - started
    started = time.perf_counter()
    result = invert(budget.inversion_iterations)
    seconds = time.perf_counter() - started
    return {"workload": f"stylegan_inversion_{resolution}", "unit": f"s per {budget.inversion_iterations} it",
            "jaxgen": seconds, "pytorch": None, "ratio": None, "compile_seconds": compile_seconds,
            "targets": budget.inversion_targets, "iterations": budget.inversion_iterations,
            "loss": f"MSE + LPIPS-VGG at {budget.lpips_resolution} px", "space": "w_plus",
            "final_loss_mean": float(np.mean(result.loss_history[-1]))}
