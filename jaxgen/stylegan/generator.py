"""StyleGAN2 generator (config F) as Flax modules, NHWC, numerically matching NVIDIA's
stylegan2-ada-pytorch `training/networks.py` (the `skip` generator architecture).

Variables live in two collections:
  params   everything the official code trains, stored raw: as in the official code the
           equalised-learning-rate gains are applied at run time, so converted weights are
           copied (transposed to Flax layouts), never rescaled.
  buffers  what the official code keeps as buffers: `mapping/w_avg`, the running mean of w
           that truncation pulls towards, and each synthesis layer's `noise_const`.

Computation is always float32 (the official fp16 blocks are a CUDA speed-up only).
"""
from __future__ import annotations

import dataclasses
import functools
import json
import math
from pathlib import Path

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxgen.checkpoints import load_params, save_params
from jaxgen.errors import WeightsError

NHWC = ("NHWC", "HWIO", "NHWC")
FIR_TAPS = (1.0, 3.0, 3.0, 1.0)
LRELU_SLOPE = 0.2
LRELU_GAIN = math.sqrt(2.0)
NOISE_MODES = ("const", "random", "none")


@dataclasses.dataclass(frozen=True)
class StyleGAN2Config:
    """Architecture of a StyleGAN2 generator; the defaults are config F at 1024 px.
    Field names follow the official `Generator(...)` arguments; `to_dict` is JSON-able."""
    z_dim: int = 512
    w_dim: int = 512
    img_resolution: int = 1024
    img_channels: int = 3
    channel_base: int = 32768
    channel_max: int = 512
    mapping_layers: int = 8
    mapping_lr_multiplier: float = 0.01
    conv_clamp: float | None = None  # official releases trained with stylegan2-ada use 256

    def __post_init__(self):
        res = self.img_resolution
        if res < 4 or res & (res - 1):
            raise ValueError(f"img_resolution must be a power of two >= 4, got {res}")

    @property
    def block_resolutions(self) -> tuple[int, ...]:
        return tuple(2 ** i for i in range(2, int(math.log2(self.img_resolution)) + 1))

    @property
    def num_ws(self) -> int:
        # One conv and one ToRGB at 4x4, two convs per later block, plus the last block's ToRGB.
        return 2 * len(self.block_resolutions)

    def channels(self, resolution: int) -> int:
        return min(self.channel_base // resolution, self.channel_max)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "StyleGAN2Config":
        return cls(**values)


# ----------------------------------------------------------------------------- ops

def lrelu(x):
    return jax.nn.leaky_relu(x, LRELU_SLOPE) * LRELU_GAIN


def clamp(x, limit: float | None):
    return x if limit is None else jnp.clip(x, -limit, limit)


def normalize_2nd_moment(x, eps=1e-8):
    return x * lax.rsqrt(jnp.mean(jnp.square(x), axis=-1, keepdims=True) + eps)


def fir_taps(gain: float) -> np.ndarray:
    """One axis of the normalised 2-D [1,3,3,1] filter scaled by `gain`: the 2-D filter is the
    outer product of these taps with themselves. Symmetric, so convolution and correlation agree."""
    taps = np.asarray(FIR_TAPS)
    return taps / taps.sum() * math.sqrt(gain)


def upfirdn2d(x, up: int, pad: tuple[int, int], gain: float):
    """Official `upfirdn2d` with the [1,3,3,1] filter: insert up-1 zeros after every pixel,
    pad both spatial axes by `pad` (negative crops), then filter each channel. The filter is
    separable, so it runs as four shifted, weighted slices per axis: element-wise work that XLA
    fuses. As a depthwise convolution it made a 256 px generator's forward + backward ~1.8x slower
    on CPU (docs/speed.md)."""
    before, after = pad
    spatial = (before, after + up - 1, up - 1)  # interior padding leaves no trailing zeros
    x = lax.pad(x, jnp.zeros((), x.dtype), ((0, 0, 0), spatial, spatial, (0, 0, 0)))
    taps = fir_taps(gain)
    for axis in (1, 2):
        size = x.shape[axis] - len(taps) + 1
        x = sum(float(tap) * lax.slice_in_dim(x, k, k + size, axis=axis) for k, tap in enumerate(taps))
    return x


def upsample_2x(x):
    """Official `upsample2d`: 2x FIR up-sampling of the skip-connection image."""
    return upfirdn2d(x, up=2, pad=(2, 1), gain=4.0)


def conv2d(x, kernel, up: int = 1, groups: int = 1):
    """'Same' convolution (official `conv2d_resample`, correlation for up=1). With up=2 the
    official code runs a stride-2 transposed convolution, i.e. a true convolution of the
    zero-stuffed input, and low-pass filters the result.

    Without groups the gradients come from `_conv2d_with_materialised_gradient_kernel` (the same
    values): inside a compiled loop (lax.scan, as inversion runs its steps) XLA:CPU otherwise leaves the
    input gradient's convolution reading the kernel with its in and out channels swapped in place, which
    it runs 2-3x slower than the same convolution on a transposed copy (benchmarks/NOTES.md)."""
    if groups != 1:
        return _conv2d(x, kernel, up, groups)
    return _conv2d_with_materialised_gradient_kernel(x, kernel, up)


def _conv2d(x, kernel, up: int = 1, groups: int = 1, kernel_layout: str = "HWIO"):
    """`conv2d` of a kernel stored as `kernel_layout` ('HWIO', or 'HWOI': in and out channels swapped)."""
    kh, kw = kernel.shape[:2]
    dimension_numbers = ("NHWC", kernel_layout, "NHWC")
    if up == 1:
        padding = ((kh // 2, kh // 2), (kw // 2, kw // 2))
        return lax.conv_general_dilated(x, kernel, (1, 1), padding, dimension_numbers=dimension_numbers,
                                        feature_group_count=groups)
    if up != 2 or kh != kw or kh % 2 == 0:
        raise ValueError("up-sampling convolutions support up=2 and odd square kernels only")
    y = lax.conv_general_dilated(x, kernel[::-1, ::-1], (1, 1), ((kh - 1, kh - 1), (kw - 1, kw - 1)),
                                 lhs_dilation=(2, 2), dimension_numbers=dimension_numbers,
                                 feature_group_count=groups)
    # The transposed convolution gives 2H + k - 2 rows; the filter's padding lands on 2H.
    fir_pad = (kh // 2 + 3 - kh, kh // 2 + 3 - kh)
    return upfirdn2d(y, up=1, pad=fir_pad, gain=4.0)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _conv2d_with_materialised_gradient_kernel(x, kernel, up: int):
    return _conv2d(x, kernel, up)


def _conv2d_forward(x, kernel, up: int):
    return _conv2d(x, kernel, up), (x, kernel)


def _conv2d_backward(up: int, residuals, grad):
    """The input gradient from a transposed copy of the kernel, which JAX's rule then reads as HWIO;
    the kernel gradient JAX's own (dropped by XLA where nothing needs it, as in inversion)."""
    x, kernel = residuals
    swapped = jnp.transpose(kernel, (0, 1, 3, 2))
    (x_grad,) = jax.vjp(lambda x: _conv2d(x, swapped, up, kernel_layout="HWOI"), x)[1](grad)
    (kernel_grad,) = jax.vjp(lambda kernel: _conv2d(x, kernel, up), kernel)[1](grad)
    return x_grad, kernel_grad


_conv2d_with_materialised_gradient_kernel.defvjp(_conv2d_forward, _conv2d_backward)


def modulated_conv2d(x, kernel, styles, demodulate: bool = True, up: int = 1, fused: bool = False):
    """Official `modulated_conv2d`. x: (N, H, W, I), kernel: (kh, kw, I, O), styles: (N, I).

    fused=False scales the activations before and after one shared-weight convolution (the
    official training path); fused=True scales each sample's weights and runs one grouped
    convolution (one group per sample), as the official inference path does. The same function;
    the grouped form's gradients ran ~5x slower on CPU and 1.5-2.6x on an H100 (docs/speed.md)."""
    n, height, width, in_channels = x.shape
    out_channels = kernel.shape[-1]
    weights = kernel[None] * styles[:, None, None, :, None]  # (N, kh, kw, I, O)
    dcoefs = None
    if demodulate:
        dcoefs = lax.rsqrt(jnp.sum(jnp.square(weights), axis=(1, 2, 3)) + 1e-8)  # (N, O)
    if not fused:
        y = conv2d(x * styles[:, None, None, :], kernel, up=up)
        return y if dcoefs is None else y * dcoefs[:, None, None, :]
    if dcoefs is not None:
        weights = weights * dcoefs[:, None, None, None, :]
    # Samples side by side as channel groups: channel index = sample * C + c.
    grouped_x = x.transpose(1, 2, 0, 3).reshape(1, height, width, n * in_channels)
    grouped_w = weights.transpose(1, 2, 3, 0, 4).reshape(*kernel.shape[:2], in_channels, n * out_channels)
    y = conv2d(grouped_x, grouped_w, up=up, groups=n)
    return y[0].reshape(y.shape[1], y.shape[2], n, out_channels).transpose(2, 0, 1, 3)


# ----------------------------------------------------------------------------- layers

def standard_normal(scale: float = 1.0):
    return lambda key, shape, dtype=jnp.float32: jax.random.normal(key, shape, dtype) * scale


class EqualizedDense(nn.Module):
    """Official `FullyConnectedLayer`: raw weights ~ N(0, 1/lr_multiplier^2), multiplied at
    run time by lr_multiplier/sqrt(fan_in), so every layer learns at the same rate."""
    features: int
    lr_multiplier: float = 1.0
    bias_init: float = 0.0
    activation: bool = False  # leaky ReLU with gain sqrt(2)

    @nn.compact
    def __call__(self, x):
        fan_in = x.shape[-1]
        kernel = self.param("kernel", standard_normal(1 / self.lr_multiplier), (fan_in, self.features))
        bias = self.param("bias", nn.initializers.constant(self.bias_init), (self.features,))
        y = x @ (kernel * (self.lr_multiplier / np.sqrt(fan_in))) + bias * self.lr_multiplier
        return lrelu(y) if self.activation else y


class MappingNetwork(nn.Module):
    """z -> w, broadcast to num_ws rows; truncation pulls rows towards the tracked w_avg."""
    config: StyleGAN2Config

    def setup(self):
        cfg = self.config
        self.layers = [EqualizedDense(cfg.w_dim, cfg.mapping_lr_multiplier, activation=True, name=f"fc{i}")
                       for i in range(cfg.mapping_layers)]
        self.w_avg = self.variable("buffers", "w_avg", jnp.zeros, (cfg.w_dim,), jnp.float32)

    def __call__(self, z, truncation_psi=1.0, truncation_cutoff: int | None = None):
        chex.assert_shape(z, (None, self.config.z_dim))
        x = normalize_2nd_moment(z.astype(jnp.float32))
        for layer in self.layers:
            x = layer(x)
        ws = jnp.repeat(x[:, None], self.config.num_ws, axis=1)
        return self.truncate(ws, truncation_psi, truncation_cutoff)

    def truncate(self, ws, truncation_psi=1.0, truncation_cutoff: int | None = None):
        """Interpolate ws (N, num_ws, w_dim) towards w_avg; with a cutoff, only rows < cutoff."""
        if isinstance(truncation_psi, (int, float)) and truncation_psi == 1:
            return ws  # skip the arithmetic so psi=1 is bit-exact
        truncated = self.w_avg.value + truncation_psi * (ws - self.w_avg.value)
        if truncation_cutoff is None:
            return truncated
        rows = jnp.arange(ws.shape[1])[None, :, None]
        return jnp.where(rows < truncation_cutoff, truncated, ws)


class SynthesisLayer(nn.Module):
    """Modulated 3x3 conv (optionally 2x up-sampling), noise, bias, lrelu, clamp."""
    out_channels: int
    resolution: int
    up: int = 1
    conv_clamp: float | None = None
    fused_modconv: bool = False

    @nn.compact
    def __call__(self, x, w, noise_mode: str = "const"):
        in_channels = x.shape[-1]
        styles = EqualizedDense(in_channels, bias_init=1.0, name="affine")(w)
        kernel = self.param("kernel", standard_normal(), (3, 3, in_channels, self.out_channels))
        noise_strength = self.param("noise_strength", nn.initializers.zeros, ())
        bias = self.param("bias", nn.initializers.zeros, (self.out_channels,))
        noise_const = self.variable("buffers", "noise_const", lambda: jax.random.normal(
            self.make_rng("params"), (self.resolution, self.resolution)))

        x = modulated_conv2d(x, kernel, styles, up=self.up, fused=self.fused_modconv)
        if noise_mode == "const":  # (R, R) for every sample, or (N, R, R) one map per sample (inversion)
            noise = noise_const.value * noise_strength
            x = x + (noise[None, :, :, None] if noise.ndim == 2 else noise[:, :, :, None])
        elif noise_mode == "random":
            noise = jax.random.normal(self.make_rng("noise"), (x.shape[0], self.resolution, self.resolution, 1))
            x = x + noise * noise_strength
        elif noise_mode != "none":
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        return clamp(lrelu(x + bias), self.conv_clamp)


class ToRGBLayer(nn.Module):
    """Modulated 1x1 conv without demodulation, bias, clamp."""
    img_channels: int
    conv_clamp: float | None = None
    fused_modconv: bool = False

    @nn.compact
    def __call__(self, x, w):
        in_channels = x.shape[-1]
        # The official layer folds the equalised-lr gain of its kernel into the styles.
        styles = EqualizedDense(in_channels, bias_init=1.0, name="affine")(w) / np.sqrt(in_channels)
        kernel = self.param("kernel", standard_normal(), (1, 1, in_channels, self.img_channels))
        bias = self.param("bias", nn.initializers.zeros, (self.img_channels,))
        y = modulated_conv2d(x, kernel, styles, demodulate=False, fused=self.fused_modconv)
        return clamp(y + bias, self.conv_clamp)


class SynthesisBlock(nn.Module):
    """One resolution: (const | up-conv0), conv1, ToRGB added to the up-sampled skip image.
    ws: (N, 2, w_dim) for the 4x4 block, else (N, 3, w_dim)."""
    out_channels: int
    resolution: int
    img_channels: int
    conv_clamp: float | None = None
    fused_modconv: bool = False

    @nn.compact
    def __call__(self, x, img, ws, noise_mode: str = "const"):
        layer = dict(conv_clamp=self.conv_clamp, fused_modconv=self.fused_modconv)
        rows = iter(range(ws.shape[1]))
        if x is None:
            const = self.param("const", standard_normal(), (self.resolution, self.resolution, self.out_channels))
            x = jnp.broadcast_to(const, (ws.shape[0], *const.shape))
        else:
            x = SynthesisLayer(self.out_channels, self.resolution, up=2, name="conv0", **layer)(
                x, ws[:, next(rows)], noise_mode)
        x = SynthesisLayer(self.out_channels, self.resolution, name="conv1", **layer)(x, ws[:, next(rows)], noise_mode)
        y = ToRGBLayer(self.img_channels, name="torgb", **layer)(x, ws[:, next(rows)])
        img = y if img is None else upsample_2x(img) + y
        return x, img


class SynthesisNetwork(nn.Module):
    """w+ (N, num_ws, w_dim) -> image (N, R, R, img_channels), roughly in [-1, 1]."""
    config: StyleGAN2Config
    fused_modconv: bool = False

    @nn.compact
    def __call__(self, ws, noise_mode: str = "const"):
        cfg = self.config
        chex.assert_shape(ws, (None, cfg.num_ws, cfg.w_dim))
        ws = ws.astype(jnp.float32)
        x = img = None
        for i, res in enumerate(cfg.block_resolutions):
            # Block i reads rows 2i-1 .. 2i+1; its ToRGB row is the next block's first conv row.
            first = max(2 * i - 1, 0)
            block_ws = ws[:, first:2 * i + 2]
            x, img = SynthesisBlock(cfg.channels(res), res, cfg.img_channels, cfg.conv_clamp,
                                    self.fused_modconv, name=f"b{res}")(x, img, block_ws, noise_mode)
        return img


class StyleGAN2Generator(nn.Module):
    """z (N, z_dim) -> image (N, R, R, C) NHWC, like the official `Generator` with c_dim=0.

    Use with `apply(variables, ..., method=...)`:
      __call__(z, truncation_psi=1, truncation_cutoff=None, noise_mode='const')
      mapping(z, truncation_psi=1, truncation_cutoff=None) -> ws (N, num_ws, w_dim)
      truncate(ws, truncation_psi, truncation_cutoff=None) -> ws
      synthesis(ws, noise_mode='const'): ws is w (N, w_dim), broadcast to every layer, or w+
    noise_mode 'random' needs `rngs={'noise': key}`. truncation_psi may be traced;
    truncation_cutoff and noise_mode are static."""
    config: StyleGAN2Config
    fused_modconv: bool = False

    def setup(self):
        self.mapping_network = MappingNetwork(self.config, name="mapping")
        self.synthesis_network = SynthesisNetwork(self.config, self.fused_modconv, name="synthesis")

    @property
    def num_ws(self) -> int:
        return self.config.num_ws

    def mapping(self, z, truncation_psi=1.0, truncation_cutoff: int | None = None):
        return self.mapping_network(z, truncation_psi, truncation_cutoff)

    def truncate(self, ws, truncation_psi=1.0, truncation_cutoff: int | None = None):
        return self.mapping_network.truncate(broadcast_ws(ws, self.num_ws), truncation_psi, truncation_cutoff)

    def synthesis(self, ws, noise_mode: str = "const"):
        return self.synthesis_network(broadcast_ws(ws, self.num_ws), noise_mode)

    def __call__(self, z, truncation_psi=1.0, truncation_cutoff: int | None = None, noise_mode: str = "const"):
        return self.synthesis(self.mapping(z, truncation_psi, truncation_cutoff), noise_mode)


def broadcast_ws(ws, num_ws: int):
    """w (N, w_dim) -> w+ (N, num_ws, w_dim); w+ passes through."""
    chex.assert_rank(ws, {2, 3})
    return jnp.repeat(ws[:, None], num_ws, axis=1) if ws.ndim == 2 else ws


def init_generator(config: StyleGAN2Config, rng) -> tuple[StyleGAN2Generator, dict]:
    """A freshly initialised generator (official initialisation) and its variables."""
    module = StyleGAN2Generator(config)
    # Jitted: op-by-op initialisation dispatches hundreds of small computations.
    return module, jax.jit(module.init)(rng, jnp.zeros((1, config.z_dim), jnp.float32))


def variable_shapes(config: StyleGAN2Config) -> dict:
    """The variables' shapes and dtypes, without computing anything."""
    return jax.eval_shape(lambda: init_generator(config, jax.random.key(0))[1])


# ----------------------------------------------------------------------------- saved generators

def mapped_w(module: StyleGAN2Generator, variables: dict, num_samples: int = 10_000, seed: int = 0):
    """(num_samples, w_dim): mapping(z) of seeded standard-normal z, one w per z."""
    z = jax.random.normal(jax.random.key(seed), (num_samples, module.config.z_dim))
    first_rows = jax.jit(lambda v, z: module.apply(v, z, method=lambda m, z: m.mapping(z)[:, 0]))
    return first_rows(variables, z)


def estimate_w_avg(module: StyleGAN2Generator, variables: dict, num_samples: int = 10_000, seed: int = 0):
    """Mean of mapping(z) over standard normal z, what the official code tracks in training."""
    return mapped_w(module, variables, num_samples, seed).mean(axis=0)


def save_generator(directory, config: StyleGAN2Config, variables: dict, **metadata) -> None:
    """A folder with the variables (orbax) and metadata.json holding the config; see `load_generator`."""
    save_params(directory, variables, {"model": "stylegan2", "config": config.to_dict(), **metadata})


def generator_metadata(directory) -> dict:
    """metadata.json of a folder written by `save_generator`."""
    metadata_file = Path(directory) / "metadata.json"
    if not metadata_file.exists():
        raise WeightsError(f"{directory} is not a converted generator (no metadata.json): pass a release name, "
                           "a URL, a .pkl / .pt file, or a folder written by `python -m jaxgen.stylegan.convert`.")
    try:
        metadata = json.loads(metadata_file.read_text())
        StyleGAN2Config.from_dict(metadata["config"])
    except (ValueError, KeyError, TypeError) as error:
        raise WeightsError(f"{metadata_file} is not a StyleGAN2 generator's metadata ({error}); convert the "
                           "checkpoint again.") from error
    return metadata


def load_generator(directory) -> tuple[StyleGAN2Generator, dict]:
    """(module, variables) saved by `save_generator` (and so by `jaxgen.stylegan.convert`)."""
    config = StyleGAN2Config.from_dict(generator_metadata(directory)["config"])
    like = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), variable_shapes(config))
    try:
        variables, _ = load_params(directory, like)
    except Exception as error:  # orbax raises many kinds for a cut or mismatched folder
        raise WeightsError(f"{directory}: the converted generator could not be read ({error}); convert the "
                           "checkpoint again.") from error
    return StyleGAN2Generator(config), variables
