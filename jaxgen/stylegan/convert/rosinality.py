"""rosinality's stylegan2-pytorch checkpoints (`550000.pt`: 'g_ema' state dict, 'latent_avg', 'args').

A `torch.save` zip read without torch (`torch_pickle`), names and shapes mapped to the official ones:
  style.{i+1}                  -> mapping.fc{i}          (style.0 is the pixel norm)
  input.input (1, C, 4, 4)     -> synthesis.b4.const
  conv1 / to_rgb1              -> synthesis.b4.conv1 / .torgb
  convs.{k}                    -> synthesis.b{8 * 2^(k//2)}.conv{k % 2}
  to_rgbs.{j}                  -> synthesis.b{8 * 2^j}.torgb
  noises.noise_{n}             -> noise_const of b4.conv1 (n = 0), else of convs.{n-1}
"""
from __future__ import annotations

import re

import numpy as np

from jaxgen.errors import WeightsError
from jaxgen.stylegan.convert import torch_pickle
from jaxgen.stylegan.convert.names import infer_config
from jaxgen.stylegan.generator import StyleGAN2Config

LAYER_PARTS = {  # suffix in a StyledConv / ToRGB -> (official suffix, reshape)
    "conv.weight": ("weight", lambda a: a[0]),  # (1, O, I, k, k)
    "conv.modulation.weight": ("affine.weight", None),
    "conv.modulation.bias": ("affine.bias", None),
    "noise.weight": ("noise_strength", lambda a: a.reshape(())),
    "activate.bias": ("bias", None),
    "bias": ("bias", lambda a: a.reshape(-1)),  # ToRGB's (1, C, 1, 1)
    "conv.blur.kernel": (None, None),  # fixed [1,3,3,1] filters, rebuilt at run time
    "upsample.kernel": (None, None),
}


def _layer(index: int) -> str:
    """Synthesis layer k of rosinality's `convs` list (and noise_{k+1}): two per block from 8x8."""
    return f"synthesis.b{8 * 2 ** (index // 2)}.conv{index % 2}"


def _official_layer(key: str) -> tuple[str, str] | None:
    """(official layer, part) of a StyledConv / ToRGB key, else None."""
    if match := re.fullmatch(r"(conv1|to_rgb1)\.(.+)", key):
        return ("synthesis.b4.conv1" if match[1] == "conv1" else "synthesis.b4.torgb"), match[2]
    if match := re.fullmatch(r"(convs|to_rgbs)\.(\d+)\.(.+)", key):
        index = int(match[2])
        return (_layer(index) if match[1] == "convs" else f"synthesis.b{8 * 2 ** index}.torgb"), match[3]
    return None


def to_official_names(state: dict, latent_avg=None, source="checkpoint") -> dict[str, np.ndarray]:
    """Rename a rosinality `g_ema` state dict (NumPy arrays) to official tensor names and shapes."""
    renamed = {}

    def put(name, value, reshape=None):
        value = np.asarray(value, np.float32)
        renamed[name] = reshape(value) if reshape else value

    for key, value in state.items():
        if match := re.fullmatch(r"style\.(\d+)\.(weight|bias)", key):
            put(f"mapping.fc{int(match[1]) - 1}.{match[2]}", value)
        elif key == "input.input":
            put("synthesis.b4.const", value, lambda a: a[0])
        elif match := re.fullmatch(r"noises\.noise_(\d+)", key):
            index = int(match[1])
            layer = "synthesis.b4.conv1" if index == 0 else _layer(index - 1)
            put(f"{layer}.noise_const", value, lambda a: a.reshape(a.shape[-2:]))
        elif (found := _official_layer(key)) and found[1] in LAYER_PARTS:
            suffix, reshape = LAYER_PARTS[found[1]]
            if suffix is not None:
                put(f"{found[0]}.{suffix}", value, reshape)
        else:
            raise WeightsError(f"{source}: unexpected key {key!r}; is this a rosinality stylegan2-pytorch g_ema?")
    if latent_avg is not None:
        put("mapping.w_avg", latent_avg, lambda a: a.reshape(-1))
    return renamed


def read(path) -> tuple[StyleGAN2Config, dict, dict]:
    """(config, tensors by official name, metadata) of a rosinality checkpoint."""
    checkpoint = torch_pickle.load(path)
    state = checkpoint.get("g_ema", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict) or "style.1.weight" not in state:
        raise WeightsError(f"{path} holds no rosinality generator ('g_ema' with style.1.weight ...).")
    tensors = to_official_names(state, checkpoint.get("latent_avg"), path)
    args = checkpoint.get("args")
    lr_multiplier = float(args.get("lr_mlp", 0.01)) if isinstance(args, dict) else 0.01
    return infer_config(tensors, path, mapping_lr_multiplier=lr_multiplier), tensors, {}
