"""The flagship study: a conv VAE on STL-10 (96x96), latent interpolation and style transfer by latent arithmetic.

    python -m experiments.vae_stl10                      # STL-10, 5,000 labelled train images, 50 epochs
    python -m experiments.vae_stl10 --dataset cifar10    # the same protocol on CIFAR-10, ~55 min on 2 CPU cores
    python -m experiments.vae_stl10 --dataset stl10_first37 --quick   # the 37 real STL-10 images kept here
    python -m experiments.latent_arithmetic --checkpoint runs/vae_stl10/models/vae ...   # reuse the model

Defaults, and why:
- recon bce: per-pixel Bernoulli cross-entropy on intensities in [0, 1], the reference study's choice. A summed
  MSE with beta = 1 is the likelihood of a Gaussian decoder with variance 1/2, far too broad for pixels in [0, 1]:
  the KL term then dominates and reconstructions wash out (use --recon mse with a small --beta instead).
- beta 1: the true ELBO, so the test negative ELBO is a bound on -log p(x) (for the Bernoulli decoder).
- KL warm-up off (--kl-warmup-epochs 0): with a 128-d latent and the BCE term in the thousands of nats, the KL
  does not collapse; warm-up is there for small --beta / MSE runs where it can.

The config (data set, model, loss, budget) is experiments/configs/vae_stl10.py; --help lists its flags.
"""
from __future__ import annotations

from dataclasses import replace

import jax
import numpy as np

from experiments import common
from experiments.common import StudyOutput, markdown_table, parse_study_args, study_parser, train_model
from experiments.configs.vae_stl10 import DATASETS, get_config
from jaxgen.errors import ConfigError
from jaxgen import checkpoints, data, latent, objectives, plots
from jaxgen.models.autoencoders import ConvVAE
from jaxgen.summary import layer_table, layer_table_markdown
from jaxgen.vae import decode_pixels, decode_style_transfer, encode_means, reconstruct, reconstruction_metrics

NAME = "vae_stl10"
# Stride-2 stages per resolution: 96 -> 6x6x256, 32 -> 4x4x128, 28 -> 7x7x64 before the dense code layer.
DEFAULT_CHANNELS = {96: (32, 64, 128, 256), 32: (32, 64, 128), 28: (32, 64)}
INTERPOLATION_ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0)
STYLE_STRENGTHS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
NUM_PAIRS = 2
SHOWN = 10  # prior samples and test reconstructions in the figures
SAVED_RECONSTRUCTIONS = "reconstructions.npz"


def load_data(config, data_dir):
    train_set = data.load(config.dataset, "train", data_dir)
    test_set = data.load(config.dataset, "test", data_dir)
    if config.unlabeled:
        extra = data.load("stl10", "unlabeled", data_dir)
        train_set = replace(train_set, images=np.concatenate([train_set.images, extra.images]),
                            labels=np.concatenate([train_set.labels, extra.labels]))
    return data.subset(train_set, config.train_examples), data.subset(test_set, config.test_examples)


def parse_pairs(indices, n_test, flag):
    """Pairs of test indices from a flat tuple I,J,K,L (validated even-length by the config)."""
    bad = [i for i in indices if not 0 <= i < n_test]
    if bad:
        raise ConfigError(f"{flag} {','.join(map(str, indices))}: test indices must lie in [0, {n_test - 1}]")
    return list(zip(indices[::2], indices[1::2]))


def describe(index, test_set):
    label = int(test_set.labels[index])
    return {"index": int(index), "class": test_set.class_names[label] if label >= 0 else None}


def shown(image):
    """'12 (cat)', or '12' for an unlabelled image."""
    return f"{image['index']} ({image['class']})" if image["class"] is not None else str(image["index"])


def latent_class_means(train_means, train_labels, num_classes):
    """Mean training latent per class; with no labels at all, every image counts as one class."""
    if not (train_labels >= 0).any():
        return np.repeat(train_means.mean(0, keepdims=True), num_classes, 0), "all training images (unlabelled)"
    return latent.class_means(train_means, train_labels, num_classes), "labelled training images of each class"


def main(argv=None):
    args, config = parse_study_args(study_parser(NAME, __doc__.splitlines()[0], get_config), argv)
    output = StudyOutput(NAME, args, config)
    train_set, test_set = load_data(config, args.data_dir)
    image_shape = tuple(train_set.images.shape[1:])
    channels = config.channels or DEFAULT_CHANNELS.get(image_shape[0])
    if channels is None:
        raise ConfigError(f"no default --channels for {image_shape[0]}px images; pass --channels")
    training = config
    if len(train_set) < config.batch_size:  # the 37 real STL-10 images
        training = config.replace(batch_size=max(d for d in (1, 2, 4, 8, 16, 32, 64) if d <= len(train_set)))
        print(f"{len(train_set)} training images: batch size lowered to {training.batch_size}")
    chosen_pairs = {flag: parse_pairs(indices, len(test_set), flag) if indices else None  # checked before training
                    for flag, indices in (("--interpolation-pairs", config.interpolation_pairs),
                                          ("--style-pairs", config.style_pairs))}
    output.open()
    model = ConvVAE(image_shape, config.latent_dim, channels)
    rng = jax.random.key(config.seed)
    x_example = np.zeros((1,) + image_shape, np.float32)
    initial = model.init(rng, x_example, jax.random.key(0))
    table = layer_table(model, initial, x_example, jax.random.key(0))
    print(layer_table_markdown(table))
    labelled = bool((train_set.labels >= 0).any())
    results = {"dataset": config.dataset, "data_source": train_set.source, "budget": output.budget,
               "config": config.to_dict(), "batch_size_used": training.batch_size, "channels": list(channels),
               "image_shape": list(image_shape), "train_examples": len(train_set),
               "test_examples": len(test_set), "labelled": labelled, "layer_table": table,
               "num_params": sum(r["parameters"] for r in table)}

    # 1. Train: reconstruction + beta * KL, checkpointed every epoch.
    steps_per_epoch = len(train_set) // training.batch_size
    objective = objectives.vae_objective(model, config.recon, config.beta,
                                         kl_warmup_steps=int(config.kl_warmup_epochs * steps_per_epoch))
    params, history = train_model("vae", initial, objective, train_set, test_set, training, config.epochs, args,
                                  output)
    results["history"] = {"total": history["train"]["loss"], "recon": history["train"]["recon"],
                          "kl": history["train"]["kl"],
                          "test": {"total": history["test"]["loss"], "recon": history["test"]["recon"],
                                   "kl": history["test"]["kl"]},
                          "epoch_seconds": history["epoch_seconds"]}
    results["test"] = reconstruction_metrics(model, params, test_set.images, config.seed, recon=config.recon,
                                             beta=config.beta)
    plots.loss_curves({"vae": history}, ["loss", "recon", "kl"], output.figure("loss_curves.png"),
                      f"{config.dataset}: total (negative ELBO), reconstruction and KL per epoch")

    # 2. Prior samples and test reconstructions (kept bit-exact for latent_arithmetic to reproduce).
    prior_z = jax.random.normal(jax.random.fold_in(rng, 1), (SHOWN, config.latent_dim))
    plots.image_grid(decode_pixels(model, params, prior_z), output.figure("prior_samples.png"), ncols=SHOWN,
                     title="Decoded samples z ~ N(0, I)")
    shown = np.arange(min(SHOWN, len(test_set)))
    recon = reconstruct(model, params, test_set.images[shown])
    np.savez(output.figure(SAVED_RECONSTRUCTIONS), indices=shown, reconstructions=recon)
    plots.image_grid(np.concatenate([data.to_float(test_set.images[shown]), recon]),
                     output.figure("reconstructions.png"), ncols=len(shown), row_labels=["test", "reconstructed"],
                     title="Test images and their reconstructions D(mu(x))")

    # The exported model and the class means are what latent_arithmetic needs.
    model_dir = output.model_dir("vae")
    train_means = encode_means(model, params, train_set.images)
    class_means, means_from = latent_class_means(train_means, train_set.labels, len(train_set.class_names))
    checkpoints.save_params(model_dir, params, {
        "model": "ConvVAE", "image_shape": list(image_shape), "latent_dim": config.latent_dim,
        "channels": list(channels), "dataset": config.dataset, "class_names": list(train_set.class_names)})
    np.savez(model_dir / "class_means.npz", means=class_means)

    # 3. Interpolation between two test images of different classes.
    pick = np.random.default_rng(config.seed)
    pairs = chosen_pairs["--interpolation-pairs"] or data.different_class_pairs(test_set.labels, NUM_PAIRS, pick)
    rows, row_labels = [], []
    for a, b in pairs:
        z = encode_means(model, params, test_set.images[[a, b]])
        rows += [data.to_float(test_set.images[[a]]), decode_pixels(model, params, latent.interpolate(
            z[0], z[1], INTERPOLATION_ALPHAS)), data.to_float(test_set.images[[b]])]
        row_labels.append(f"{a} -> {b}")
    plots.image_grid(np.concatenate(rows), output.figure("interpolation.png"), ncols=len(INTERPOLATION_ALPHAS) + 2,
                     row_labels=row_labels, col_labels=["A"] + [f"α={a:g}" for a in INTERPOLATION_ALPHAS] + ["B"],
                     title="(1 - α) z_A + α z_B, decoded")
    results["interpolation"] = {"alphas": list(INTERPOLATION_ALPHAS),
                                "pairs": [{"a": describe(a, test_set), "b": describe(b, test_set)} for a, b in pairs]}

    # 4. Style transfer by latent arithmetic.
    style_pairs = chosen_pairs["--style-pairs"] or data.different_class_pairs(test_set.labels, NUM_PAIRS, pick)
    rows, row_labels = [], []
    for a, b in style_pairs:
        z = encode_means(model, params, test_set.images[[a, b]])
        mean_b = class_means[max(int(test_set.labels[b]), 0)]
        ends = data.to_float(test_set.images[[a]]), data.to_float(test_set.images[[b]])
        decoded = decode_style_transfer(model, params, z[0], z[1], mean_b, STYLE_STRENGTHS)
        rows += [ends[0], decoded[0], ends[1], ends[0], decoded[1], ends[1]]
        row_labels += [f"{a}+λ({b}-mean)", f"{a}+α({b}-{a})"]
    plots.image_grid(np.concatenate(rows), output.figure("style_transfer.png"), ncols=len(STYLE_STRENGTHS) + 2,
                     row_labels=row_labels, col_labels=["A"] + [f"{s:g}" for s in STYLE_STRENGTHS] + ["B"],
                     title="z_A + λ (z_B − z_mean[class B])  and  z_A + α (z_B − z_A)")
    results["style_transfer"] = {"lambdas": list(STYLE_STRENGTHS), "alphas": list(STYLE_STRENGTHS),
                                 "class_means_from": means_from,
                                 "pairs": [{"a": describe(a, test_set), "b": describe(b, test_set)}
                                           for a, b in style_pairs]}

    output.finish(results, write_report(results, output.root))


def write_report(results, out) -> str:
    config = results["config"]
    test = results["test"]
    pairs = "; ".join(f"{shown(p['a'])} → {shown(p['b'])}" for p in results["interpolation"]["pairs"])
    style = "; ".join(f"A = {shown(p['a'])}, B = {shown(p['b'])}" for p in results["style_transfer"]["pairs"])
    same_split = " (the 37 images are both the training and the test set)" if config["dataset"] == "stl10_first37" else ""
    return f"""# Conv VAE on {results['dataset']}

Data: `{results['data_source']}`, {results['train_examples']:,} train / {results['test_examples']:,} test images
of {'x'.join(map(str, results['image_shape']))}{same_split}. Budget: {results['budget']}, {config['epochs']} epochs,
batch {results['batch_size_used']}, Adam {config['learning_rate']:g}, seed {config['seed']}.
Loss: {config['recon'].upper()} reconstruction + {config['beta']:g} × KL(q(z|x) ‖ N(0, I)), KL warm-up
{config['kl_warmup_epochs']:g} epochs; latent dimension **{config['latent_dim']}**.

## Architecture

The encoder's last dense layer outputs {2 * config['latent_dim']} numbers: the mean and log-variance of
q(z|x) (latent dimension {config['latent_dim']}). Up-convolutions are exact 4x4 stride-2 transposed convolutions.

{layer_table_markdown(results['layer_table'])}

## Test metrics (reconstructions from the latent mean; nats per image for the loss terms)

{markdown_table(["MSE", "MAE", "PSNR (dB)", "SSIM", "neg. ELBO", "reconstruction", "KL"],
                [[test['mse'], test['mae'], test['psnr'], test['ssim'], test['neg_elbo'], test['recon'], test['kl']]])}

![loss curves](loss_curves.png)
![reconstructions](reconstructions.png)
![prior samples](prior_samples.png)

## Latent interpolation

Pairs (test index, class): {pairs}.

![interpolation](interpolation.png)

## Style transfer by latent arithmetic

Rows per pair: z_A + λ (z_B − z_mean[class of B]) and z_A + α (z_B − z_A), λ, α ∈ {{0, 0.2, …, 1}}; class means
over the {results['style_transfer']['class_means_from']}. Pairs: {style}.

![style transfer](style_transfer.png)

Reuse the trained model without retraining:
`python -m experiments.latent_arithmetic --checkpoint {out}/models/vae --mode style --images A B`.
"""


if __name__ == "__main__":
    common.entry_point(main)
