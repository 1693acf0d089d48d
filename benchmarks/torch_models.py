"""PyTorch twins of the benchmarked jaxgen models: the same layers, shapes and parameter counts.

Written for the benchmarks only (PyTorch is a benchmark/test dependency). Images are NCHW here.
"""
from __future__ import annotations

import importlib
import importlib.util
import math
import sys
from pathlib import Path

import torch
import torch.utils.cpp_extension
from torch import nn


class MnistConvVAE(nn.Module):
    """jaxgen.models.autoencoders.MnistConvVAE."""

    def __init__(self, latent_dim: int = 20):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 32, 4, 2, 1), nn.Conv2d(32, 64, 4, 2, 1)
        self.enc_fc1, self.enc_fc2 = nn.Linear(64 * 7 * 7, 256), nn.Linear(256, 128)
        self.to_mean, self.to_logvar = nn.Linear(128, latent_dim), nn.Linear(128, latent_dim)
        self.dec_fc1, self.dec_fc2, self.dec_fc3 = nn.Linear(latent_dim, 128), nn.Linear(128, 256), nn.Linear(256, 64 * 7 * 7)
        self.deconv1, self.deconv2 = nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.ConvTranspose2d(32, 1, 4, 2, 1)

    def forward(self, x):
        h = torch.relu(self.conv2(torch.relu(self.conv1(x)))).flatten(1)
        h = torch.relu(self.enc_fc2(torch.relu(self.enc_fc1(h))))
        mean, logvar = self.to_mean(h), self.to_logvar(h)
        z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)
        h = torch.relu(self.dec_fc3(torch.relu(self.dec_fc2(torch.relu(self.dec_fc1(z))))))
        h = torch.relu(self.deconv1(h.view(-1, 64, 7, 7)))
        return self.deconv2(h), mean, logvar


def vae_loss(model, x):
    """Negative ELBO with a Bernoulli decoder, batch mean of per-image sums (jaxgen.objectives.vae_objective)."""
    logits, mean, logvar = model(x)
    recon = nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)
    kl = 0.5 * (mean.square() + logvar.exp() - 1.0 - logvar).sum(1)
    return (recon + kl).mean()


class SpatialConvAE(nn.Module):
    """jaxgen.models.autoencoders.SpatialConvAE with its CIFAR-10 defaults (32x32x3 -> 8x8x8 code)."""

    def __init__(self, channels=(32, 64), code_channels: int = 8, image_channels: int = 3):
        super().__init__()
        c1, c2 = channels
        self.conv1, self.conv2 = nn.Conv2d(image_channels, c1, 4, 2, 1), nn.Conv2d(c1, c2, 4, 2, 1)
        self.to_code, self.from_code = nn.Conv2d(c2, code_channels, 3, 1, 1), nn.Conv2d(code_channels, c2, 3, 1, 1)
        self.upconv1, self.upconv2 = nn.ConvTranspose2d(c2, c1, 4, 2, 1), nn.ConvTranspose2d(c1, image_channels, 4, 2, 1)

    def forward(self, x):
        code = self.to_code(torch.relu(self.conv2(torch.relu(self.conv1(x)))))
        h = torch.relu(self.upconv1(torch.relu(self.from_code(code))))
        return self.upconv2(h)


def autoencoder_loss(model, x):
    """Per-pixel MSE of the sigmoid reconstruction (jaxgen.objectives.autoencoder_objective, no corruption)."""
    return (torch.sigmoid(model(x)) - x).square().mean()


class FourierDenoisingMLP(nn.Module):
    """jaxgen.models.diffusion.DenoisingMLP('fourier'): fixed Gaussian frequencies (buffers, no gradient),
    [cos, sin] features of x (64) and of the scaled time (32), 3 x (Linear 64, ReLU), Linear 2."""

    def __init__(self, num_steps: int = 50, width: int = 64, depth: int = 3, position_features: int = 64,
                 time_features: int = 32, fourier_scale: float = 1.0, dim: int = 2):
        super().__init__()
        self.num_steps = num_steps
        self.register_buffer("b_pos", fourier_scale * torch.randn(position_features, dim))
        self.register_buffer("b_time", fourier_scale * torch.randn(time_features, 1))
        widths = [2 * (position_features + time_features)] + [width] * depth
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.out = nn.Linear(width, dim)

    @staticmethod
    def features(x, b):
        projected = 2 * math.pi * x @ b.T
        return torch.cat([projected.cos(), projected.sin()], -1)

    def forward(self, x, t):
        t_scaled = ((t.float() - 1.0) / (self.num_steps - 1))[:, None]
        h = torch.cat([self.features(x, self.b_pos), self.features(t_scaled, self.b_time)], -1)
        for layer in self.hidden:
            h = torch.relu(layer(h))
        return self.out(h)


def parameter_count(model: nn.Module) -> int:
    """Trainable parameters (the Fourier frequencies are buffers, as in jaxgen they are constants)."""
    return sum(p.numel() for p in model.parameters())


def official_stylegan2_networks():
    """NVIDIA's StyleGAN2-ADA `training.networks`, from the copy the `draggan` package vendors
    (`pip install --no-deps draggan==1.1.6`), imported without importing draggan itself (whose
    __init__ wants its app's dependencies)."""
    spec = importlib.util.find_spec("draggan")
    if spec is None:
        raise ModuleNotFoundError("NVIDIA's StyleGAN2 code comes from draggan: pip install --no-deps draggan==1.1.6")
    folder = Path(next(iter(spec.submodule_search_locations))) / "stylegan2"
    sys.path.insert(0, str(folder))
    try:
        networks = importlib.import_module("training.networks")
        _load_built_plugins(importlib.import_module("torch_utils.custom_ops"))
        return networks
    finally:
        sys.path.remove(str(folder))


def _load_built_plugins(custom_ops) -> None:
    """On a GPU, NVIDIA's ops (bias_act, upfirdn2d) build CUDA kernels with torch.utils.cpp_extension.load
    and then import the result by name, which fails since PyTorch stopped registering what `load` returns
    in sys.modules: the ops then fall back to their slow reference code (with a warning), and the
    benchmark would time that. Keep the module `load` returns instead of importing it."""
    def get_plugin(module_name, sources, **build_kwargs):
        if module_name not in custom_ops._cached_plugins:
            custom_ops._cached_plugins[module_name] = torch.utils.cpp_extension.load(
                name=module_name, sources=sources, **build_kwargs)
        return custom_ops._cached_plugins[module_name]

    custom_ops.get_plugin = get_plugin


def official_cuda_ops_loaded() -> bool:
    """Whether NVIDIA's generator ran on its own CUDA kernels (not the reference fallback); False on a CPU."""
    ops = [sys.modules.get(f"torch_utils.ops.{name}") for name in ("bias_act", "upfirdn2d")]
    return all(op is not None and op._plugin is not None for op in ops)


def official_stylegan2_generator(config, seed: int = 0):
    """NVIDIA's `Generator` (c_dim 0) with the architecture of a jaxgen `StyleGAN2Config`, weights
    drawn by its own initialisation under torch.manual_seed(seed)."""
    networks = official_stylegan2_networks()
    torch.manual_seed(seed)
    return networks.Generator(
        z_dim=config.z_dim, c_dim=0, w_dim=config.w_dim, img_resolution=config.img_resolution,
        img_channels=config.img_channels, mapping_kwargs=dict(num_layers=config.mapping_layers),
        synthesis_kwargs=dict(channel_base=config.channel_base, channel_max=config.channel_max,
                              conv_clamp=config.conv_clamp))
