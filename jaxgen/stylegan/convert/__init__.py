"""StyleGAN2 checkpoints -> jaxgen's Flax `StyleGAN2Generator`, without torch.

    python -m jaxgen.stylegan.convert SRC DST [--format official|rosinality]

One reader per source format renames its tensors to NVIDIA's official names:
  official     NVIDIA's release pickles (`*.pkl`, network under 'G_ema'): `official.py`
  rosinality   rosinality stylegan2-pytorch checkpoints (`*.pt`, 'g_ema' and 'latent_avg'): `rosinality.py`
`names.py` then places every tensor in the Flax variables (checking names and shapes), and DST becomes
a folder that `jaxgen.stylegan.generator.load_generator` reads. `torch_pickle.py` reads PyTorch's
tensors as NumPy arrays and never runs code a file names.
"""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from jaxgen.errors import ConfigError, WeightsError
from jaxgen.stylegan.convert import official, rosinality
from jaxgen.stylegan.convert.names import official_to_flax
from jaxgen.stylegan.generator import StyleGAN2Config, StyleGAN2Generator, estimate_w_avg, save_generator

READERS = {"official": official.read, "rosinality": rosinality.read}
FORMATS = tuple(READERS)


def guess_format(path) -> str:
    """`torch.save` zips are rosinality checkpoints; other files are release pickles."""
    return "rosinality" if zipfile.is_zipfile(path) else "official"


def read_checkpoint(src, source_format: str | None = None) -> tuple[StyleGAN2Config, dict, dict]:
    """(config, variables, metadata for `save_generator`) of the checkpoint `src`."""
    src = Path(src)
    if not src.is_file():
        raise WeightsError(f"{src}: no such file" + (" (a folder: pass a converted generator folder to "
                                                      "load_generator instead)" if src.is_dir() else "."))
    source_format = source_format or guess_format(src)
    if source_format not in READERS:
        raise ConfigError(f"--format must be one of {FORMATS}, got {source_format!r}")
    config, tensors, metadata = READERS[source_format](src)
    w_avg_missing = "mapping.w_avg" not in tensors
    if w_avg_missing:
        tensors["mapping.w_avg"] = np.zeros(config.w_dim, np.float32)
    variables = official_to_flax(tensors, config, src)
    if w_avg_missing:
        variables["buffers"]["mapping"]["w_avg"] = estimate_w_avg(StyleGAN2Generator(config), variables)
        metadata["notes"] = ["the checkpoint holds no w_avg; it was estimated from 10,000 random z"]
    return config, variables, dict(source=str(src), source_format=source_format, **metadata)


def convert(src, dst, source_format: str | None = None, **metadata) -> StyleGAN2Config:
    """Convert the checkpoint `src` into the folder `dst` (replaced if present)."""
    config, variables, read_metadata = read_checkpoint(src, source_format)
    save_generator(dst, config, variables, **read_metadata, **metadata)
    return config
