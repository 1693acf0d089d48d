"""Official StyleGAN2 checkpoints -> jaxgen's Flax `StyleGAN2Generator`.

    python -m jaxgen.convert SRC DST [--format official|rosinality]

SRC is a stylegan2-ada-pytorch / stylegan3 release pickle (`*.pkl`, network under 'G_ema')
or a rosinality stylegan2-pytorch checkpoint (`*.pt`, 'g_ema' state dict and 'latent_avg').
DST becomes a folder with the variables (orbax) and metadata.json holding the
`StyleGAN2Config`; `load_generator(DST)` rebuilds (module, variables).

Release pickles embed the network's Python source and normally run it when unpickled. The
reader here never imports or runs anything a pickle names: it rebuilds tensors (with torch,
needed for conversion only) and reads each module's saved attributes; every other class or
function is replaced by an inert placeholder.
"""
from __future__ import annotations

import argparse
import collections
import io
import json
import pickle
import re
import zipfile
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

try:  # numpy 2 renamed the module that numpy 1 pickles name
    from numpy._core.multiarray import scalar as _numpy_scalar
except ImportError:
    from numpy.core.multiarray import scalar as _numpy_scalar

from jaxgen.checkpoints import load_params, save_params
from jaxgen.models.stylegan2 import FIR_TAPS, StyleGAN2Config, StyleGAN2Generator, variable_shapes

FORMATS = ("official", "rosinality")
BUFFER_NAMES = ("w_avg", "noise_const")  # official buffers that are variables here


def _require_torch():
    try:
        import torch
    except ImportError as error:
        raise ImportError("Converting PyTorch checkpoints needs torch (only for this step): "
                          "pip install torch  (the CPU build is enough).") from error
    return torch


# ----------------------------------------------------------------------------- restricted unpickling

class _Inert:
    """Stands in for any class or function a pickle names that conversion does not need:
    calling it only records the arguments, and pickled state lands in `.state`."""

    def __new__(cls, *args, **kwargs):
        return object.__new__(cls)

    def __init__(self, *args, **kwargs):
        self.args = args

    def __setstate__(self, state):
        self.state = state


class _SavedModule:
    """An official `persistence` object: its class name and saved __dict__; the source code
    pickled with it is dropped unread."""

    def __init__(self, meta):
        meta = meta if isinstance(meta, dict) else {}
        self.class_name = meta.get("class_name")
        self.state = dict(meta.get("state") or {})


class _PlainDict(dict):
    """Replaces dnnlib.EasyDict (a dict with attribute access) in the official pickles."""


def _load_storage(data: bytes):
    # Each storage is pickled as the bytes of a `torch.save`; read them with torch's own
    # restricted loader rather than the `torch.storage._load_from_bytes` the pickle names.
    return _require_torch().load(io.BytesIO(data), weights_only=True)


def _rebuild_tensor(*args):
    return _require_torch()._utils._rebuild_tensor_v2(*args)


def _rebuild_legacy_tensor(*args):
    return _require_torch()._utils._rebuild_tensor(*args)


def _parameter_data(data, *unused):
    return data


_ALLOWED = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _SavedModule,
    ("torch.storage", "_load_from_bytes"): _load_storage,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_legacy_tensor,
    ("torch._utils", "_rebuild_parameter"): _parameter_data,
    ("torch._utils", "_rebuild_parameter_with_state"): _parameter_data,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("dnnlib.util", "EasyDict"): _PlainDict,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,
}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        return type(f"Inert[{module}.{name}]", (_Inert,), {})


def read_release_pickle(path) -> dict:
    """The top-level dict of an official release pickle, with networks as `_SavedModule`s."""
    with open(path, "rb") as file:
        return _RestrictedUnpickler(file).load()


def _state(module) -> dict:
    state = getattr(module, "state", None)
    return state if isinstance(state, dict) else {}


def _submodules(module) -> dict:
    return dict(_state(module).get("_modules") or {})


def module_tensors(module, prefix: str = "") -> dict[str, np.ndarray]:
    """Parameters and buffers of a saved module tree as float32 arrays, by dotted name."""
    torch = _require_torch()
    tensors = {}
    state = _state(module)
    for group in ("_parameters", "_buffers"):
        for name, value in (state.get(group) or {}).items():
            if value is None:
                continue
            if not isinstance(value, torch.Tensor):
                raise ValueError(f"{prefix}{name} is a {type(value).__name__}, not a tensor; "
                                 "the pickle is not laid out like an official release.")
            tensors[prefix + name] = value.detach().to(torch.float32).cpu().numpy()
    for name, child in _submodules(module).items():
        tensors.update(module_tensors(child, f"{prefix}{name}."))
    return tensors


# ----------------------------------------------------------------------------- official pickles

def _require(condition: bool, message: str):
    if not condition:
        raise ValueError(message)


def _official_generator(release: dict):
    _require(isinstance(release, dict) and "G_ema" in release,
             "Not an official StyleGAN2 release pickle: expected a dict with the network under 'G_ema'.")
    generator = release["G_ema"]
    modules = _submodules(generator)
    _require({"mapping", "synthesis"} <= set(modules),
             "'G_ema' is not a StyleGAN2 generator (no mapping and synthesis networks).")
    blocks = _submodules(modules["synthesis"])
    _require("input" not in blocks, "StyleGAN3 (alias-free) generators are not supported, only StyleGAN2.")
    _require(_state(generator).get("c_dim", 0) == 0, "Conditional generators (c_dim > 0) are not supported.")
    for name, block in blocks.items():
        architecture = _state(block).get("architecture", "skip")
        _require(architecture == "skip", f"synthesis.{name} uses the '{architecture}' architecture; "
                                         "only 'skip' (config F) is supported.")
    return generator


def _official_hyperparameters(generator) -> dict:
    """What the weights' shapes cannot tell: read from the saved module attributes, which
    (unlike constructor defaults, which differ between official repos) are what ran."""
    mapping = _submodules(generator)["mapping"]
    first_layer = _submodules(_submodules(_submodules(generator)["synthesis"])["b4"])["conv1"]
    fc0 = _state(_submodules(mapping)["fc0"])
    for name, layer in _submodules(mapping).items():
        _require(_state(layer).get("activation", "lrelu") == "lrelu", f"mapping.{name} is not an lrelu layer.")
    _require(_state(first_layer).get("activation", "lrelu") == "lrelu", "synthesis layers must use lrelu.")
    conv_clamp = _state(first_layer).get("conv_clamp")
    return dict(mapping_lr_multiplier=float(fc0.get("bias_gain", 0.01)),
                conv_clamp=None if conv_clamp is None else float(conv_clamp))


def _check_resample_filters(tensors: dict) -> dict:
    expected = np.outer(FIR_TAPS, FIR_TAPS) / np.sum(np.outer(FIR_TAPS, FIR_TAPS))
    for name in [n for n in tensors if n.endswith("resample_filter")]:
        _require(tensors[name].shape == expected.shape and np.allclose(tensors[name], expected),
                 f"{name} is not the [1,3,3,1] filter; other filters are not supported.")
    return {n: t for n, t in tensors.items() if not n.endswith("resample_filter")}


def _init_kwargs(generator) -> dict:
    state = _state(generator)
    names = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs", "synthesis_kwargs")
    kwargs = dict(zip(names, state.get("_init_args") or ()))
    kwargs.update(state.get("_init_kwargs") or {})
    return kwargs


def read_official(path) -> tuple[StyleGAN2Config, dict, dict]:
    """(config, tensors by official name, metadata) of an official release pickle."""
    generator = _official_generator(read_release_pickle(path))
    tensors = _check_resample_filters(module_tensors(generator))
    kwargs = _init_kwargs(generator)
    config = infer_config(tensors, preferred=_channel_kwargs(kwargs), **_official_hyperparameters(generator))
    return config, tensors, dict(init_kwargs=_jsonable(kwargs))


def _channel_kwargs(kwargs: dict) -> dict:
    synthesis = dict(kwargs.get("synthesis_kwargs") or {}) or kwargs  # stylegan3 passes them flat
    return {k: int(synthesis[k]) for k in ("channel_base", "channel_max") if k in synthesis}


# ----------------------------------------------------------------------------- rosinality checkpoints

_ROSINALITY_LAYER_PARTS = {  # suffix in a StyledConv / ToRGB -> (official suffix, reshape)
    "conv.weight": ("weight", lambda a: a[0]),  # (1, O, I, k, k)
    "conv.modulation.weight": ("affine.weight", None),
    "conv.modulation.bias": ("affine.bias", None),
    "noise.weight": ("noise_strength", lambda a: a.reshape(())),
    "activate.bias": ("bias", None),
    "bias": ("bias", lambda a: a.reshape(-1)),  # ToRGB's (1, C, 1, 1)
    "conv.blur.kernel": (None, None),  # fixed [1,3,3,1] filters, rebuilt at run time
    "upsample.kernel": (None, None),
}


def _rosinality_layer(index: int) -> str:
    """Synthesis layer k of rosinality's `convs` list (and noise_{k+1}): two per block from 8x8."""
    return f"synthesis.b{8 * 2 ** (index // 2)}.conv{index % 2}"


def rosinality_to_official_names(state: dict, latent_avg=None) -> dict[str, np.ndarray]:
    """Rename a rosinality `g_ema` state dict (numpy arrays) to official tensor names/shapes."""
    renamed = {}

    def put(name, value, reshape=None):
        value = np.asarray(value, np.float32)
        renamed[name] = reshape(value) if reshape else value

    for key, value in state.items():
        if match := re.fullmatch(r"style\.(\d+)\.(weight|bias)", key):
            put(f"mapping.fc{int(match[1]) - 1}.{match[2]}", value)  # style.0 is the pixel norm
        elif key == "input.input":
            put("synthesis.b4.const", value, lambda a: a[0])
        elif match := re.fullmatch(r"noises\.noise_(\d+)", key):
            index = int(match[1])
            layer = "synthesis.b4.conv1" if index == 0 else _rosinality_layer(index - 1)
            put(f"{layer}.noise_const", value, lambda a: a.reshape(a.shape[-2:]))
        elif match := (re.fullmatch(r"(conv1|to_rgb1)\.(.+)", key)
                       or re.fullmatch(r"(convs|to_rgbs)\.(\d+)\.(.+)", key)):
            kind, part = match[1], match[match.lastindex]
            if kind == "conv1":
                layer = "synthesis.b4.conv1"
            elif kind == "to_rgb1":
                layer = "synthesis.b4.torgb"
            elif kind == "convs":
                layer = _rosinality_layer(int(match[2]))
            else:
                layer = f"synthesis.b{8 * 2 ** int(match[2])}.torgb"
            _require(part in _ROSINALITY_LAYER_PARTS, f"Unexpected rosinality key {key!r}.")
            suffix, reshape = _ROSINALITY_LAYER_PARTS[part]
            if suffix is not None:
                put(f"{layer}.{suffix}", value, reshape)
        else:
            raise ValueError(f"Unexpected rosinality key {key!r}; is this a rosinality stylegan2-pytorch g_ema?")
    if latent_avg is not None:
        put("mapping.w_avg", latent_avg, lambda a: a.reshape(-1))
    return renamed


def read_rosinality(path) -> tuple[StyleGAN2Config, dict, dict]:
    """(config, tensors by official name, metadata) of a rosinality checkpoint."""
    torch = _require_torch()
    # Training checkpoints also hold the argparse options; nothing else beyond tensors is allowed.
    with torch.serialization.safe_globals([argparse.Namespace]):
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    state = checkpoint.get("g_ema", checkpoint)
    _require("style.1.weight" in state, f"{path} holds no rosinality generator ('g_ema' with style.1.weight ...).")
    latent_avg = checkpoint.get("latent_avg")
    to_numpy = lambda t: t.detach().to(torch.float32).numpy()
    tensors = rosinality_to_official_names({k: to_numpy(v) for k, v in state.items()},
                                           None if latent_avg is None else to_numpy(latent_avg))
    lr_multiplier = float(getattr(checkpoint.get("args"), "lr_mlp", 0.01))
    return infer_config(tensors, mapping_lr_multiplier=lr_multiplier), tensors, {}


# ----------------------------------------------------------------------------- shared: names -> Flax

def infer_config(tensors: dict, preferred: dict | None = None, **hyperparameters) -> StyleGAN2Config:
    """The architecture implied by tensor shapes (official names); `hyperparameters` gives
    what shapes cannot (lr multiplier, conv_clamp)."""
    fc0 = tensors["mapping.fc0.weight"]
    resolutions = sorted(int(m[1]) for n in tensors if (m := re.fullmatch(r"synthesis\.b(\d+)\.conv1\.weight", n)))
    channels = {res: tensors[f"synthesis.b{res}.conv1.weight"].shape[0] for res in resolutions}
    channel_base, channel_max = infer_channel_layout(channels, preferred or {})
    return StyleGAN2Config(
        z_dim=fc0.shape[1], w_dim=tensors[f"mapping.fc{_count(tensors, 'mapping.fc') - 1}.weight"].shape[0],
        img_resolution=resolutions[-1], img_channels=tensors[f"synthesis.b{resolutions[-1]}.torgb.weight"].shape[0],
        channel_base=channel_base, channel_max=channel_max,
        mapping_layers=_count(tensors, "mapping.fc"), **hyperparameters)


def _count(tensors: dict, prefix: str) -> int:
    return len({n.split(".")[1] for n in tensors if n.startswith(prefix) and n.endswith(".weight")})


def infer_channel_layout(channels: dict[int, int], preferred: dict) -> tuple[int, int]:
    """(channel_base, channel_max) with channels[res] == min(channel_base // res, channel_max)."""
    fits = lambda base, top: all(c == min(base // r, top) for r, c in channels.items())
    if {"channel_base", "channel_max"} <= set(preferred) and fits(preferred["channel_base"], preferred["channel_max"]):
        return preferred["channel_base"], preferred["channel_max"]
    top = max(channels.values())
    below = [res * c for res, c in channels.items() if c < top]
    base = min(below) if below else top * max(channels)
    _require(fits(base, top), f"Channels per resolution {channels} do not follow "
                              "min(channel_base // res, channel_max); not supported.")
    return base, top


def _flax_name(official: str) -> tuple[str, ...]:
    parts = official.split(".")
    collection = "buffers" if parts[-1] in BUFFER_NAMES else "params"
    leaf = "kernel" if parts[-1] == "weight" else parts[-1]
    return (collection, *parts[:-1], leaf)


def _flax_layout(official: str, array: np.ndarray) -> np.ndarray:
    if official.endswith(".weight") and array.ndim == 2:
        return array.T  # (out, in) -> (in, out)
    if official.endswith(".weight") and array.ndim == 4:
        return array.transpose(2, 3, 1, 0)  # OIHW -> HWIO
    if official.endswith(".const"):
        return array.transpose(1, 2, 0)  # CHW -> HWC
    return array


def official_to_flax(tensors: dict, config: StyleGAN2Config) -> dict:
    """Variables for `StyleGAN2Generator(config)` from tensors by official name; every
    variable must be present with the expected shape, and nothing may be left over."""
    flat = {_flax_name(name): np.array(_flax_layout(name, array), np.float32, order="C")
            for name, array in tensors.items()}
    expected = {tuple(k.key for k in path): leaf.shape
                for path, leaf in jax.tree_util.tree_leaves_with_path(variable_shapes(config))}
    problems = [f"missing {'/'.join(p)}" for p in expected if p not in flat]
    problems += [f"unexpected {'/'.join(p)}" for p in flat if p not in expected]
    problems += [f"{'/'.join(p)}: shape {flat[p].shape}, expected {s}"
                 for p, s in expected.items() if p in flat and flat[p].shape != s]
    _require(not problems, f"Checkpoint does not fit {config}:\n  " + "\n  ".join(problems[:20]))
    variables = {}
    for path, array in flat.items():
        node = variables
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = jnp.asarray(array)
    return variables


# ----------------------------------------------------------------------------- entry points

def guess_format(path) -> str:
    """`torch.save` zips are rosinality checkpoints; other `.pkl` files are release pickles."""
    path = Path(path)
    return "official" if path.suffix == ".pkl" and not zipfile.is_zipfile(path) else "rosinality"


def convert(src, dst, source_format: str | None = None) -> StyleGAN2Config:
    """Convert the checkpoint `src` into the folder `dst` (replaced if present)."""
    source_format = source_format or guess_format(src)
    _require(source_format in FORMATS, f"source_format must be one of {FORMATS}")
    reader = read_official if source_format == "official" else read_rosinality
    config, tensors, metadata = reader(src)
    w_avg_missing = "mapping.w_avg" not in tensors
    if w_avg_missing:
        tensors["mapping.w_avg"] = np.zeros(config.w_dim, np.float32)
    variables = official_to_flax(tensors, config)
    if w_avg_missing:
        variables["buffers"]["mapping"]["w_avg"] = estimate_w_avg(StyleGAN2Generator(config), variables)
        metadata["notes"] = ["the checkpoint holds no w_avg; it was estimated from 10,000 random z"]
    save_generator(dst, config, variables, source=str(src), source_format=source_format, **metadata)
    return config


def estimate_w_avg(module: StyleGAN2Generator, variables: dict, num_samples: int = 10_000, seed: int = 0):
    """Mean of mapping(z) over standard normal z, what the official code tracks in training."""
    z = jax.random.normal(jax.random.key(seed), (num_samples, module.config.z_dim))
    first_rows = jax.jit(lambda v, z: module.apply(v, z, method=lambda m, z: m.mapping(z)[:, 0]))
    return first_rows(variables, z).mean(axis=0)


def save_generator(directory, config: StyleGAN2Config, variables: dict, **metadata) -> None:
    save_params(directory, variables, {"model": "stylegan2", "config": config.to_dict(), **metadata})


def load_generator(directory) -> tuple[StyleGAN2Generator, dict]:
    """(module, variables) saved by `convert` or `save_generator`."""
    metadata_file = Path(directory) / "metadata.json"
    if not metadata_file.exists():
        raise FileNotFoundError(f"No metadata.json in {directory}; convert a checkpoint first.")
    config = StyleGAN2Config.from_dict(json.loads(metadata_file.read_text())["config"])
    like = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), variable_shapes(config))
    variables, _ = load_params(directory, like)
    return StyleGAN2Generator(config), variables


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("src", help="official release .pkl or rosinality .pt")
    parser.add_argument("dst", help="output folder (replaced if present)")
    parser.add_argument("--format", choices=FORMATS, help="default: guessed from the file")
    args = parser.parse_args(argv)
    config = convert(args.src, args.dst, args.format)
    print(f"Wrote {args.dst}: {config}")


if __name__ == "__main__":
    main()
