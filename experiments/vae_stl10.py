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
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import jax
import numpy as np

from experiments.common import StudyOutput, markdown_table, study_parser, train_model
from jaxgen import checkpoints, data, latent, objectives, plots
from jaxgen.models.autoencoders import ConvVAE
from jaxgen.summary import layer_table, layer_table_markdown
from jaxgen.vae import decode_pixels, decode_style_transfer, encode_means, reconstruct, reconstruction_metrics

NAME = "vae_stl10"
DATASETS = ("stl10", "stl10_first37", "cifar10", "mnist")
# Stride-2 stages per resolution: 96 -> 6x6x256, 32 -> 4x4x128, 28 -> 7x7x64 before the dense code layer.
DEFAULT_CHANNELS = {96: (32, 64, 128, 256), 32: (32, 64, 128), 28: (32, 64)}
INTERPOLATION_ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0)
STYLE_STRENGTHS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
NUM_PAIRS = 2
SHOWN = 10  # prior samples and test reconstructions in the figures
SAVED_RECONSTRUCTIONS = "reconstructions.npz"


@dataclass(frozen=True)
class Budget:
    epochs: int = 50
    batch_size: int = 128
    learning_rate: float = 1e-3
    train_examples: int | None = None  # None: the whole split
    test_examples: int | None = None


FULL = Budget()
QUICK = Budget(epochs=2, batch_size=32, train_examples=512, test_examples=256)


def parse_args(argv=None):
    parser = study_parser(NAME, __doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=DATASETS, default="stl10",
                        help="stl10 (default), stl10_first37 (the 37 real unlabelled STL-10 images in shared/data; "
                             "train = test), cifar10 or mnist, each at its own resolution")
    parser.add_argument("--unlabeled", action="store_true", help="STL-10 only: add the 100,000 unlabelled images")
    parser.add_argument("--recon", choices=("bce", "mse"), default="bce", help="reconstruction term (default bce)")
    parser.add_argument("--beta", type=float, default=1.0, help="KL weight (default 1: the ELBO)")
    parser.add_argument("--kl-warmup-epochs", type=float, default=0.0,
                        help="ramp the KL weight linearly from 0 to beta over this many epochs (default 0: off)")
    parser.add_argument("--latent-dim", type=int, default=128)
    parser.add_argument("--channels", default=None,
                        help="comma-separated conv widths, one stride-2 stage each (default by resolution: "
                             + ", ".join(f"{k}px: {','.join(map(str, v))}" for k, v in DEFAULT_CHANNELS.items()) + ")")
    parser.add_argument("--epochs", type=int, default=None, help="default 50 (2 with --quick)")
    parser.add_argument("--batch-size", type=int, default=None, help="default 128 (32 with --quick)")
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--interpolation-pairs", nargs="+", metavar="I,J", default=None,
                        help="test indices of the interpolation pairs (default: seeded, different classes)")
    parser.add_argument("--style-pairs", nargs="+", metavar="A,B", default=None,
                        help="test indices (A, B) of the style-transfer pairs (default: seeded, different classes)")
    return parser.parse_args(argv)


def load_data(args, budget):
    try:
        train_set = data.load(args.dataset, "train", args.data_dir)
        test_set = data.load(args.dataset, "test", args.data_dir)
        if args.unlabeled:
            if args.dataset != "stl10":
                raise SystemExit("--unlabeled adds STL-10's unlabelled split; it needs --dataset stl10")
            extra = data.load("stl10", "unlabeled", args.data_dir)
            train_set = replace(train_set, images=np.concatenate([train_set.images, extra.images]),
                                labels=np.concatenate([train_set.labels, extra.labels]))
    except data.DataNotFoundError as error:
        raise SystemExit(f"{error}\nThe full STL-10 is not in this project's shared data: run the same protocol "
                         "with --dataset cifar10, or on the 37 real STL-10 images with --dataset stl10_first37.")
    return data.subset(train_set, budget.train_examples), data.subset(test_set, budget.test_examples)


def parse_pairs(values, n_test):
    pairs = []
    for value in values:
        try:
            a, b = (int(v) for v in value.split(","))
        except ValueError:
            raise SystemExit(f"a pair is two test indices 'I,J', got {value!r}")
        if not (0 <= a < n_test and 0 <= b < n_test):
            raise SystemExit(f"pair {value}: test indices must lie in [0, {n_test})")
        pairs.append((a, b))
    return pairs


def describe(index, test_set):
    label = int(test_set.labels[index])
    return {"index": index, "class": test_set.class_names[label] if label >= 0 else None}


def latent_class_means(train_means, train_labels, num_classes):
    """Mean training latent per class; with no labels at all, every image counts as one class."""
    if not (train_labels >= 0).any():
        return np.repeat(train_means.mean(0, keepdims=True), num_classes, 0), "all training images (unlabelled)"
    return latent.class_means(train_means, train_labels, num_classes), "labelled training images of each class"


def main(argv=None):
    args = parse_args(argv)
    budget = QUICK if args.quick else FULL
    budget = replace(budget, epochs=args.epochs or budget.epochs, batch_size=args.batch_size or budget.batch_size,
                     learning_rate=args.learning_rate)
    output = StudyOutput(NAME, args)
    train_set, test_set = load_data(args, budget)
    if len(train_set) < budget.batch_size:  # the 37 real STL-10 images
        budget = replace(budget, batch_size=max(d for d in (8, 16, 32, 64) if d <= len(train_set)))
        print(f"{len(train_set)} training images: batch size lowered to {budget.batch_size}")
    image_shape = tuple(train_set.images.shape[1:])
    channels = tuple(int(c) for c in args.channels.split(",")) if args.channels else DEFAULT_CHANNELS.get(image_shape[0])
    if channels is None:
        raise SystemExit(f"no default --channels for {image_shape[0]}px images; pass --channels")
    model = ConvVAE(image_shape, args.latent_dim, channels)
    rng = jax.random.key(args.seed)
    x_example = np.zeros((1,) + image_shape, np.float32)
    initial = model.init(rng, x_example, jax.random.key(0))
    table = layer_table(model, initial, x_example, jax.random.key(0))
    print(layer_table_markdown(table))
    labelled = bool((train_set.labels >= 0).any())
    results = {"dataset": args.dataset, "data_source": train_set.source, "budget": "quick" if args.quick else "full",
               "seed": args.seed, "epochs": budget.epochs, "batch_size": budget.batch_size,
               "learning_rate": args.learning_rate, "latent_dim": args.latent_dim, "channels": list(channels),
               "image_shape": list(image_shape), "recon": args.recon, "beta": args.beta,
               "kl_warmup_epochs": args.kl_warmup_epochs, "train_examples": len(train_set),
               "test_examples": len(test_set), "labelled": labelled, "layer_table": table,
               "num_params": sum(r["parameters"] for r in table)}

    # 1. Train: reconstruction + beta * KL, checkpointed every epoch.
    steps_per_epoch = len(train_set) // budget.batch_size
    objective = objectives.vae_objective(model, args.recon, args.beta,
                                         kl_warmup_steps=int(args.kl_warmup_epochs * steps_per_epoch))
    params, history = train_model("vae", initial, objective, train_set, test_set, budget, budget.epochs, args,
                                  output)
    results["history"] = {"total": history["train"]["loss"], "recon": history["train"]["recon"],
                          "kl": history["train"]["kl"],
                          "test": {"total": history["test"]["loss"], "recon": history["test"]["recon"],
                                   "kl": history["test"]["kl"]},
                          "epoch_seconds": history["epoch_seconds"]}
    results["test"] = reconstruction_metrics(model, params, test_set.images, args.seed, recon=args.recon,
                                             beta=args.beta)
    plots.loss_curves({"vae": history}, ["loss", "recon", "kl"], output.figure("loss_curves.png"),
                      f"{args.dataset}: total (negative ELBO), reconstruction and KL per epoch")

    # 2. Prior samples and test reconstructions (kept bit-exact for latent_arithmetic to reproduce).
    prior_z = jax.random.normal(jax.random.fold_in(rng, 1), (SHOWN, args.latent_dim))
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
        "model": "ConvVAE", "image_shape": list(image_shape), "latent_dim": args.latent_dim,
        "channels": list(channels), "dataset": args.dataset, "class_names": list(train_set.class_names)})
    np.savez(model_dir / "class_means.npz", means=class_means)

    # 3. Interpolation between two test images of different classes.
    pick = np.random.default_rng(args.seed)
    pairs = (parse_pairs(args.interpolation_pairs, len(test_set)) if args.interpolation_pairs
             else data.different_class_pairs(test_set.labels, NUM_PAIRS, pick))
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
    style_pairs = (parse_pairs(args.style_pairs, len(test_set)) if args.style_pairs
                   else data.different_class_pairs(test_set.labels, NUM_PAIRS, pick))
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

    output.finish(results, write_report(results, args))


def write_report(results, args) -> str:
    test = results["test"]
    pairs = "; ".join(f"{p['a']['index']} ({p['a']['class']}) → {p['b']['index']} ({p['b']['class']})"
                      for p in results["interpolation"]["pairs"])
    style = "; ".join(f"A = {p['a']['index']} ({p['a']['class']}), B = {p['b']['index']} ({p['b']['class']})"
                      for p in results["style_transfer"]["pairs"])
    same_split = " (the 37 images are both the training and the test set)" if args.dataset == "stl10_first37" else ""
    return f"""# Conv VAE on {results['dataset']}

Data: `{results['data_source']}`, {results['train_examples']:,} train / {results['test_examples']:,} test images
of {'x'.join(map(str, results['image_shape']))}{same_split}. Budget: {results['budget']}, {results['epochs']} epochs,
batch {results['batch_size']}, Adam {results['learning_rate']:g}, seed {results['seed']}.
Loss: {results['recon'].upper()} reconstruction + {results['beta']:g} × KL(q(z|x) ‖ N(0, I)), KL warm-up
{results['kl_warmup_epochs']:g} epochs; latent dimension **{results['latent_dim']}**.

## Architecture

The encoder's last dense layer outputs {2 * results['latent_dim']} numbers: the mean and log-variance of
q(z|x) (latent dimension {results['latent_dim']}). Up-convolutions are exact 4x4 stride-2 transposed convolutions.

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
`python -m experiments.latent_arithmetic --checkpoint {args.out or 'runs/' + NAME}/models/vae --mode style --images A B`.
"""


if __name__ == "__main__":
    main()
