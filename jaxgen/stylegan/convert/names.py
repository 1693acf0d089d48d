"""Tensors under the official names -> `StyleGAN2Generator` variables, checked one by one.

Every reader (official pickle, rosinality .pt) first renames its tensors to NVIDIA's official names
and shapes (`mapping.fc0.weight`, `synthesis.b8.conv0.affine.bias`, ...); this module infers the
architecture from their shapes and places each tensor with `update`, which refuses a name the
generator does not have or a shape it does not expect, as rosinality's `convert_weight.py` does.
"""
from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen.errors import WeightsError
from jaxgen.stylegan.generator import StyleGAN2Config, variable_shapes

BUFFER_NAMES = ("w_avg", "noise_const")  # official buffers that are variables here


def infer_config(tensors: dict, source, preferred: dict | None = None, **hyperparameters) -> StyleGAN2Config:
    """The architecture implied by tensor shapes (official names); `hyperparameters` gives what
    shapes cannot (lr multiplier, conv_clamp)."""
    try:
        fc0 = tensors["mapping.fc0.weight"]
        resolutions = sorted(int(m[1]) for n in tensors
                             if (m := re.fullmatch(r"synthesis\.b(\d+)\.conv1\.weight", n)))
        channels = {res: tensors[f"synthesis.b{res}.conv1.weight"].shape[0] for res in resolutions}
        channel_base, channel_max = infer_channel_layout(channels, preferred or {}, source)
        mapping_layers = _count(tensors, "mapping.fc")
        return StyleGAN2Config(
            z_dim=fc0.shape[1], w_dim=tensors[f"mapping.fc{mapping_layers - 1}.weight"].shape[0],
            img_resolution=resolutions[-1], img_channels=tensors[f"synthesis.b{resolutions[-1]}.torgb.weight"].shape[0],
            channel_base=channel_base, channel_max=channel_max, mapping_layers=mapping_layers, **hyperparameters)
    except (KeyError, IndexError, ValueError) as error:
        raise WeightsError(f"{source}: not a StyleGAN2 generator's tensors (missing or odd {error}).") from error


def _count(tensors: dict, prefix: str) -> int:
    return len({n.split(".")[1] for n in tensors if n.startswith(prefix) and n.endswith(".weight")})


def infer_channel_layout(channels: dict[int, int], preferred: dict, source="") -> tuple[int, int]:
    """(channel_base, channel_max) with channels[res] == min(channel_base // res, channel_max)."""
    fits = lambda base, top: all(c == min(base // r, top) for r, c in channels.items())
    if {"channel_base", "channel_max"} <= set(preferred) and fits(preferred["channel_base"], preferred["channel_max"]):
        return preferred["channel_base"], preferred["channel_max"]
    top = max(channels.values())
    below = [res * c for res, c in channels.items() if c < top]
    base = min(below) if below else top * max(channels)
    if not fits(base, top):
        raise WeightsError(f"{source}: channels per resolution {channels} do not follow "
                           "min(channel_base // res, channel_max); not supported.")
    return base, top


def flax_path(official: str) -> tuple[str, ...]:
    """'synthesis.b8.conv0.weight' -> ('params', 'synthesis', 'b8', 'conv0', 'kernel')."""
    parts = official.split(".")
    collection = "buffers" if parts[-1] in BUFFER_NAMES else "params"
    leaf = "kernel" if parts[-1] == "weight" else parts[-1]
    return (collection, *parts[:-1], leaf)


def flax_layout(official: str, array: np.ndarray) -> np.ndarray:
    """Official tensor layout -> Flax's: dense (out, in) -> (in, out), conv OIHW -> HWIO, const CHW -> HWC."""
    if official.endswith(".weight") and array.ndim == 2:
        return array.T
    if official.endswith(".weight") and array.ndim == 4:
        return array.transpose(2, 3, 1, 0)
    if official.endswith(".const"):
        return array.transpose(1, 2, 0)
    return array


def update(variables: dict, expected: dict, official: str, array, source) -> None:
    """Put one tensor (official name and layout) into `variables`; refuse a name the generator does
    not have or a shape other than `expected`'s (both keyed by Flax path)."""
    path = flax_path(official)
    if path not in expected:
        raise WeightsError(f"{source}: {official} has no place in the generator (no {'/'.join(path)}); "
                           "is this a StyleGAN2 config-F checkpoint?")
    value = np.array(flax_layout(official, np.asarray(array, np.float32)), np.float32, order="C")
    if value.shape != expected[path]:
        raise WeightsError(f"{source}: {official} has shape {value.shape} in Flax layout, the generator "
                           f"expects {expected[path]}.")
    node = variables
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = jnp.asarray(value)


def official_to_flax(tensors: dict, config: StyleGAN2Config, source) -> dict:
    """Variables for `StyleGAN2Generator(config)` from tensors by official name: each placed by
    `update`; then every variable must have been given."""
    expected = {tuple(k.key for k in path): leaf.shape
                for path, leaf in jax.tree_util.tree_leaves_with_path(variable_shapes(config))}
    variables = {}
    for name, array in tensors.items():
        update(variables, expected, name, array, source)
    given = {tuple(k.key for k in path) for path, _ in jax.tree_util.tree_leaves_with_path(variables)}
    missing = ["/".join(path) for path in expected if path not in given]
    if missing:
        raise WeightsError(f"{source}: {len(missing)} generator variables are missing, e.g. {', '.join(missing[:3])}.")
    return variables
