"""Reuse a trained VAE without retraining: reconstruct, interpolate or transfer style between chosen images.

    python -m experiments.latent_arithmetic --checkpoint runs/vae_stl10/models/vae --mode style --images 12 345
    python -m experiments.latent_arithmetic --checkpoint runs/vae_cifar10/models/vae --mode interpolate --images 3 7
    python -m experiments.latent_arithmetic --checkpoint DIR --mode reconstruct --images 0 1 2 3

--checkpoint is the exported model folder a study writes (OUT/models/vae: orbax params, metadata.json and
class_means.npz). Images are indices into the test split (--split train for the training split) of the data set
the model was trained on. Writes a PNG and decoded.npz (the decoded images in [0, 1]) to --out.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import jax
import numpy as np

from experiments import common
from jaxgen import checkpoints, data, latent, plots
from jaxgen.errors import CheckpointError, ConfigError, OutputFolderError
from jaxgen.models.autoencoders import ConvVAE
from jaxgen.vae import decode_pixels, decode_style_transfer, encode_means, reconstruct
from experiments.vae_stl10 import INTERPOLATION_ALPHAS, STYLE_STRENGTHS


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m experiments.latent_arithmetic", description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="exported model folder (OUT/models/vae of vae_stl10)")
    parser.add_argument("--mode", choices=("reconstruct", "interpolate", "style"), default="style")
    parser.add_argument("--images", type=int, nargs="+", required=True,
                        help="image indices: any number for reconstruct, A B for interpolate and style")
    parser.add_argument("--split", choices=("test", "train"), default="test")
    parser.add_argument("--strengths", type=float, nargs="+", default=None,
                        help="alphas / lambdas (default 0 .25 .5 .75 1 to interpolate, 0 .2 ... 1 for style)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", default="runs/latent_arithmetic")
    common.add_debug_flag(parser)
    return parser.parse_args(argv)


def load_model(directory: Path):
    """(model, params, metadata, class_means) of an exported ConvVAE."""
    metadata_path = directory / "metadata.json"
    if not directory.is_dir():
        raise CheckpointError(f"--checkpoint {directory}: no such folder; point it at OUT/models/vae of a "
                              "finished vae_stl10 run")
    if not metadata_path.exists():
        raise CheckpointError(f"--checkpoint {directory} is not an exported model (no metadata.json); point it at "
                              "OUT/models/vae of a finished vae_stl10 run")
    try:
        metadata = json.loads(metadata_path.read_text())
    except ValueError as error:
        raise CheckpointError(f"{metadata_path} cannot be read ({error}); export the model again") from None
    if not isinstance(metadata, dict) or metadata.get("model") != "ConvVAE":
        model = metadata.get("model") if isinstance(metadata, dict) else None
        raise CheckpointError(f"--checkpoint {directory} holds a {model}, not a ConvVAE; point it at "
                              "OUT/models/vae of a finished vae_stl10 run")
    model = ConvVAE(tuple(metadata["image_shape"]), metadata["latent_dim"], tuple(metadata["channels"]))
    like = model.init(jax.random.key(0), np.zeros((1, *metadata["image_shape"]), np.float32), jax.random.key(0))
    params, _ = checkpoints.load_params(directory, like)
    means_path = directory / "class_means.npz"
    class_means = np.load(means_path)["means"] if means_path.exists() else None
    return model, params, metadata, class_means


def main(argv=None):
    args = parse_args(argv)
    if args.mode != "reconstruct" and len(args.images) != 2:
        raise ConfigError(f"--images: --mode {args.mode} takes two images, A B (got {len(args.images)})")
    if args.strengths is not None and not all(np.isfinite(args.strengths)):
        raise ConfigError("--strengths: give finite numbers")
    model, params, metadata, class_means = load_model(Path(args.checkpoint))
    dataset = data.load(metadata["dataset"], args.split, args.data_dir)
    bad = [i for i in args.images if not 0 <= i < len(dataset)]
    if bad:
        raise ConfigError(f"--images {' '.join(map(str, bad))}: outside the {len(dataset)} {args.split} images "
                          f"(0 to {len(dataset) - 1})")
    out = Path(args.out)
    common.check_out_folder(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputFolderError(f"--out {out}: cannot create the folder ({error.strerror})") from None
    images = dataset.images[args.images]

    if args.mode == "reconstruct":
        decoded = reconstruct(model, params, images)
        grid, ncols, rows = np.concatenate([data.to_float(images), decoded]), len(images), ["input", "reconstructed"]
        title = "Reconstructions D(mu(x))"
    else:
        z_a, z_b = encode_means(model, params, images)
        ends = data.to_float(images)
        if args.mode == "interpolate":
            strengths = args.strengths or INTERPOLATION_ALPHAS
            decoded = decode_pixels(model, params, latent.interpolate(z_a, z_b, strengths))
            rows, title = [f"{args.images[0]} -> {args.images[1]}"], "(1 - α) z_A + α z_B"
            grid = np.concatenate([ends[:1], decoded, ends[1:]])
        else:
            if class_means is None:
                raise CheckpointError(f"--checkpoint {args.checkpoint} has no class_means.npz; rerun the study "
                                      "to export it")
            strengths = args.strengths or STYLE_STRENGTHS
            mean_b = class_means[max(int(dataset.labels[args.images[1]]), 0)]
            decoded = decode_style_transfer(model, params, z_a, z_b, mean_b, strengths)
            grid = np.concatenate([ends[:1], decoded[0], ends[1:], ends[:1], decoded[1], ends[1:]])
            rows, title = ["z_A + λ(z_B − mean)", "z_A + α(z_B − z_A)"], "Style transfer by latent arithmetic"
        ncols = len(strengths) + 2

    np.savez(out / "decoded.npz", indices=np.asarray(args.images), decoded=decoded)
    plots.image_grid(grid, out / f"{args.mode}.png", ncols=ncols, row_labels=rows, title=title)
    print(f"wrote {out / 'decoded.npz'} and {out / (args.mode + '.png')}")
    return decoded


if __name__ == "__main__":
    common.entry_point(main)
