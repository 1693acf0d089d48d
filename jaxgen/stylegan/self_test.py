"""A seeded random StyleGAN2 and targets it generated itself: the inversion study's engine check on a CPU.

The generator is 32 px with the official initialisation; each target's w+ has an independent w per
row, so only w+ can represent it exactly (w and z approximate it): recovery should order w+ > w > z.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen.stylegan.generator import StyleGAN2Config, StyleGAN2Generator, estimate_w_avg, variable_shapes

# CPU-sized: 32 px, channels 32, 32, 32, 16 at 4..32 px, 8 w+ rows.
SELF_TEST_CONFIG = StyleGAN2Config(z_dim=64, w_dim=64, img_resolution=32, channel_base=512, channel_max=32)
SELF_TEST_IMAGE_STD = 0.5  # ToRGB rescaled so random-weight images have a photo-like spread in [-1, 1]
SELF_TEST_PSI = 0.7  # truncation of the target latents towards w_avg


def seeded_variables(config: StyleGAN2Config, seed: int) -> dict:
    """Variables drawn with numpy from the official initialisation's distributions: kernels and the
    constant input N(0, 1) (mapping kernels N(0, 1 / lr_multiplier^2), which the equalised learning
    rate scales back), biases 0 except the affine layers' 1, noise strengths 0, noise constants
    N(0, 1), w_avg 0. Unlike `init_generator` this compiles nothing (init_generator takes 5-10 s)."""
    rng = np.random.default_rng(seed)

    def draw(path, leaf):
        names = [key.key for key in path]
        if names[-1] == "kernel":
            scale = 1.0 / config.mapping_lr_multiplier if "mapping" in names[:-1] and "fc" in names[-2] else 1.0
            return jnp.asarray(rng.normal(size=leaf.shape) * scale, jnp.float32)
        if names[-1] in ("const", "noise_const"):
            return jnp.asarray(rng.normal(size=leaf.shape), jnp.float32)
        fill = 1.0 if names[-1] == "bias" and names[-2] == "affine" else 0.0
        return jnp.full(leaf.shape, fill, jnp.float32)

    return jax.tree_util.tree_map_with_path(draw, variable_shapes(config))


def self_test_setup(seed: int, num_targets: int):
    """(module, variables, targets, true w+) for --self-test.

    The generator is `seeded_variables` with w_avg estimated from 10,000 z, and ToRGB kernels
    rescaled so the targets spread like photos in [-1, 1] (a std of 0.5; random weights give ~1.4,
    which clipping would distort). Each target's w+ has an independent w per row, mapping(z_row)
    truncated with psi 0.7 towards w_avg: only w+ can represent such an image exactly, w and z can
    only approximate it, so the expected order of recovery is w+ > w > z."""
    config = SELF_TEST_CONFIG
    module, variables = StyleGAN2Generator(config), seeded_variables(config, seed)
    variables["buffers"]["mapping"]["w_avg"] = estimate_w_avg(module, variables, seed=seed + 1)
    z = jax.random.normal(jax.random.fold_in(jax.random.key(seed), 3), (num_targets * config.num_ws, config.z_dim))
    rows = module.apply(variables, z, SELF_TEST_PSI, method=lambda m, z, psi: m.mapping(z, psi)[:, 0])
    true_w_plus = rows.reshape(num_targets, config.num_ws, config.w_dim)
    synthesize = jax.jit(lambda v, ws: module.apply(v, ws, method=module.synthesis))
    # Biases start at 0, so the image is linear in the ToRGB kernels: rescaling them rescales it.
    scale = SELF_TEST_IMAGE_STD / float(jnp.std(synthesize(variables, true_w_plus)))
    for block in variables["params"]["synthesis"].values():
        block["torgb"]["kernel"] = block["torgb"]["kernel"] * scale
    targets = synthesize(variables, true_w_plus)
    return module, variables, np.asarray(targets), np.asarray(true_w_plus)
