"""NVIDIA's release pickles (stylegan2-ada-pytorch, stylegan3: `network-snapshot-*.pkl`, the NGC files).

The pickle is a dict with the generator under 'G_ema', pickled by NVIDIA's `persistence` module: each
network is `_reconstruct_persistent_obj({'class_name', 'module_src', 'state', ...})`, source code
that unpickling would normally run. Here it never runs: a network becomes `SavedModule` (its class
name and saved __dict__), tensors become NumPy arrays (`torch_pickle`), and every other name a
pickle holds becomes an inert placeholder.
"""
from __future__ import annotations

import pickle

import numpy as np

from jaxgen.errors import WeightsError
from jaxgen.stylegan.convert import torch_pickle
from jaxgen.stylegan.convert.names import infer_config
from jaxgen.stylegan.generator import FIR_TAPS, StyleGAN2Config

try:  # numpy 2 renamed the module that numpy 1 pickles name
    from numpy._core.multiarray import scalar as _numpy_scalar
except ImportError:
    from numpy.core.multiarray import scalar as _numpy_scalar

SUPPORTED = "unconditional StyleGAN2 generators (config F, the 'skip' architecture)"


class SavedModule:
    """An official `persistence` object: its class name and saved __dict__; the source code pickled
    with it is dropped unread."""

    def __init__(self, meta):
        meta = meta if isinstance(meta, dict) else {}
        self.class_name = meta.get("class_name")
        self.state = dict(meta.get("state") or {})


class PlainDict(dict):
    """Replaces dnnlib.EasyDict (a dict with attribute access) in the official pickles."""


ALLOWED = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): SavedModule,
    ("torch.storage", "_load_from_bytes"): torch_pickle.load_from_bytes,
    ("dnnlib.util", "EasyDict"): PlainDict,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,
}


def read_release_pickle(path) -> dict:
    """The top-level object of a release pickle, with networks as `SavedModule`s."""
    try:
        with open(path, "rb") as file:
            return torch_pickle.RestrictedUnpickler(file, ALLOWED, torch_pickle.inert_class).load()
    except (pickle.UnpicklingError, EOFError, ValueError, IndexError, TypeError, AttributeError) as error:
        raise WeightsError(f"{path} could not be read as a StyleGAN release pickle "
                           f"({type(error).__name__}: {error}); is the file complete?") from error


def _state(module) -> dict:
    state = getattr(module, "state", None)
    return state if isinstance(state, dict) else {}


def _submodules(module) -> dict:
    return dict(_state(module).get("_modules") or {})


def module_tensors(module, prefix: str = "") -> dict[str, np.ndarray]:
    """Parameters and buffers of a saved module tree as float32 arrays, by dotted name."""
    tensors = {}
    state = _state(module)
    for group in ("_parameters", "_buffers"):
        for name, value in (state.get(group) or {}).items():
            if value is None:
                continue
            if not isinstance(value, np.ndarray):
                raise WeightsError(f"{prefix}{name} is a {type(value).__name__}, not a tensor; "
                                   "the pickle is not laid out like an official release.")
            tensors[prefix + name] = np.array(value, np.float32)
    for name, child in _submodules(module).items():
        tensors.update(module_tensors(child, f"{prefix}{name}."))
    return tensors


def _require(condition: bool, path, message: str):
    if not condition:
        raise WeightsError(f"{path}: {message}")


def _generator(release, path):
    _require(isinstance(release, dict) and "G_ema" in release, path,
             "not a StyleGAN release pickle (expected a dict with the network under 'G_ema').")
    generator = release["G_ema"]
    modules = _submodules(generator)
    _require({"mapping", "synthesis"} <= set(modules), path,
             "'G_ema' is not a StyleGAN generator (no mapping and synthesis networks).")
    blocks = _submodules(modules["synthesis"])
    _require("input" not in blocks, path, f"a StyleGAN3 (alias-free) generator; supported: {SUPPORTED}.")
    c_dim = _state(generator).get("c_dim", 0)
    _require(not c_dim, path, f"a conditional generator (c_dim = {c_dim}, one image class per label); "
                              f"supported: {SUPPORTED}.")
    for name, block in blocks.items():
        architecture = _state(block).get("architecture", "skip")
        _require(architecture == "skip", path, f"synthesis.{name} uses the '{architecture}' architecture; "
                                               f"supported: {SUPPORTED}.")
    return generator


def _hyperparameters(generator, path) -> dict:
    """What the weights' shapes cannot tell: read from the saved module attributes, which (unlike
    constructor defaults, which differ between official repos) are what ran."""
    mapping = _submodules(generator)["mapping"]
    first_layer = _submodules(_submodules(_submodules(generator)["synthesis"])["b4"])["conv1"]
    fc0 = _state(_submodules(mapping)["fc0"])
    for name, layer in _submodules(mapping).items():
        _require(_state(layer).get("activation", "lrelu") == "lrelu", path, f"mapping.{name} is not an lrelu layer.")
    _require(_state(first_layer).get("activation", "lrelu") == "lrelu", path, "synthesis layers must use lrelu.")
    conv_clamp = _state(first_layer).get("conv_clamp")
    return dict(mapping_lr_multiplier=float(fc0.get("bias_gain", 0.01)),
                conv_clamp=None if conv_clamp is None else float(conv_clamp))


def _drop_resample_filters(tensors: dict, path) -> dict:
    expected = np.outer(FIR_TAPS, FIR_TAPS) / np.sum(np.outer(FIR_TAPS, FIR_TAPS))
    for name in [n for n in tensors if n.endswith("resample_filter")]:
        _require(tensors[name].shape == expected.shape and np.allclose(tensors[name], expected), path,
                 f"{name} is not the [1,3,3,1] filter; other filters are not supported.")
    return {n: t for n, t in tensors.items() if not n.endswith("resample_filter")}


def _init_kwargs(generator) -> dict:
    state = _state(generator)
    names = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs", "synthesis_kwargs")
    kwargs = dict(zip(names, state.get("_init_args") or ()))
    kwargs.update(state.get("_init_kwargs") or {})
    return kwargs


def _channel_kwargs(kwargs: dict) -> dict:
    synthesis = dict(kwargs.get("synthesis_kwargs") or {}) or kwargs  # stylegan3 passes them flat
    return {k: int(synthesis[k]) for k in ("channel_base", "channel_max") if k in synthesis}


def jsonable(value):
    """Pickled hyperparameters as JSON values (anything else as its repr)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


def read(path) -> tuple[StyleGAN2Config, dict, dict]:
    """(config, tensors by official name, metadata) of an official release pickle."""
    generator = _generator(read_release_pickle(path), path)
    tensors = _drop_resample_filters(module_tensors(generator), path)
    kwargs = _init_kwargs(generator)
    config = infer_config(tensors, path, preferred=_channel_kwargs(kwargs), **_hyperparameters(generator, path))
    return config, tensors, dict(init_kwargs=jsonable(kwargs))
