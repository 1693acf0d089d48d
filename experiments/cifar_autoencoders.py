"""The CIFAR-10 representation study: AE, denoising AEs, VAE and masked conv AEs, compared.

    python -m experiments.cifar_autoencoders            # 9 models on all 50,000 training images
    python -m experiments.cifar_autoencoders --quick    # the same code path on 512 images, under 2 minutes

The config (budget, code size, masking, arithmetic) is experiments/configs/cifar_autoencoders.py; --help lists
its flags.

Every model shares one fully convolutional encoder/decoder family (jaxgen.models.autoencoders.SpatialConvAE):
two 4x4 stride-2 conv stages (32, 64 channels), a 3x3 conv to an 8x8 code map (latent 2048 = 8x8x32 by default,
--latent-dim), and the mirror image with exact 4x4 stride-2 transposed convolutions. One more AE, `ae_latent512`,
has the 512-number code of the public reference numbers (--reference-latent-dim), so the AE can be compared with
them at the same bottleneck size.

Defaults, and why:
- Denoising AEs see the image plus N(0, sigma^2) noise, clipped back to [0, 1] (so inputs stay valid images;
  the noise is then slightly smaller than sigma near black and white pixels); targets are the clean images.
  dae_var0.1 uses variance 0.1 (sigma = 0.316); dae_0.1/0.3/0.5 use sigma = 0.1/0.3/0.5.
- Masked conv AEs zero a random `ratio` of the 2x2 patches of the first conv stage's 16x16 feature maps
  (one 4x4-pixel footprint each) in every training image; they reconstruct the whole image. Test metrics use
  unmasked inputs; the masking section measures them with masks.
- AEs minimise the per-pixel MSE; the VAE minimises the negative ELBO with a Bernoulli decoder (the flagship's
  loss) and is scored on the reconstruction of its posterior mean.
- Latent 2048: from 512 to 2048 numbers the linear probes gain 4-7 points (AE 41.5% -> 46.0% in the full run),
  reconstruction 0.3-1.5 dB, for ~25% more training time; the code is still 2/3 of the 3,072 pixels.
- 9 epochs of Adam 2e-3 with cosine decay, batch 128 (the whole study then fits in 90 minutes on 2 CPU cores);
  the per-epoch test loss uses 2,000 test images. Linear probes: logistic regression (L2, C = 1) on standardised frozen
  codes of all training images, 150 L-BFGS iterations (the budget, not convergence), scored on the test set.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import jax
import numpy as np

from experiments import common
from experiments.common import StudyOutput, markdown_table, parse_study_args, study_parser, train_model
from experiments.configs.cifar_autoencoders import get_config
from jaxgen.errors import ConfigError
from jaxgen import data, latent, objectives, plots, probes
from jaxgen.models.autoencoders import SpatialConvAE, SpatialConvVAE
from jaxgen.reconstruction import masked_region_errors, noised_images, occlusion_sensitivity, reconstruction_scores
from jaxgen.summary import layer_table, layer_table_markdown
from jaxgen.vae import decode_pixels, encode_images, mean_pixels

NAME = "cifar_autoencoders"
NOISE_LEVELS = (0.1, 0.3, 0.5)
INTERPOLATION_STEPS = 8
SHOWN = 8  # test images in the reconstruction figures


@dataclass(frozen=True)
class ModelSpec:
    description: str
    variational: bool = False
    noise_sigma: float = 0.0  # std of the training input noise
    mask_ratio: float = 0.0  # fraction of first-stage feature patches zeroed in training
    latent_dim: int | None = None  # None: the study's --latent-dim


MODELS = {
    "ae": ModelSpec("autoencoder, MSE"),
    "dae_var0.1": ModelSpec("denoising AE, noise variance 0.1 (sigma 0.316)", noise_sigma=math.sqrt(0.1)),
    "dae_0.1": ModelSpec("denoising AE, sigma 0.1", noise_sigma=0.1),
    "dae_0.3": ModelSpec("denoising AE, sigma 0.3", noise_sigma=0.3),
    "dae_0.5": ModelSpec("denoising AE, sigma 0.5", noise_sigma=0.5),
    "vae": ModelSpec("VAE, Bernoulli negative ELBO", variational=True),
    "mcae_0.25": ModelSpec("masked conv AE, 25% of feature patches", mask_ratio=0.25),
    "mcae_0.5": ModelSpec("masked conv AE, 50% of feature patches", mask_ratio=0.5),
    "mcae_0.75": ModelSpec("masked conv AE, 75% of feature patches", mask_ratio=0.75),
}
DENOISERS = ["ae", "dae_var0.1", "dae_0.1", "dae_0.3", "dae_0.5"]
MASKED = ["mcae_0.25", "mcae_0.5", "mcae_0.75"]
EMBEDDED = ("ae", "dae_var0.1")  # t-SNE / PCA, clean vs noisy


def load_data(config, data_dir):
    train_set = data.load("cifar10", "train", data_dir)
    test_set = data.load("cifar10", "test", data_dir)
    return (data.subset(train_set, config.train_examples, config.seed),
            data.subset(test_set, config.test_examples, config.seed + 1))


class Trained:
    """One trained model with the functions the evaluation needs."""

    def __init__(self, name, spec, model, params, history):
        self.name, self.spec, self.model, self.params, self.history = name, spec, model, params, history
        self.pixels = reconstruction_fn(model, spec.variational)

    def reconstruct(self, x, feature_mask=None):
        """Pixels in [0, 1] from float images (the VAE decodes its posterior mean)."""
        return self.pixels(self.params, x, feature_mask)

    def codes(self, images) -> np.ndarray:
        """(N, latent_dim) frozen codes (posterior means for the VAE) of uint8 or float images."""
        return encode_images(self.model, self.params, images, output=0 if self.spec.variational else None)


@cache
def reconstruction_fn(model, variational: bool):
    """pixels(params, x, feature_mask=None): one jitted function per architecture, so the models that share
    one (the AE, the denoising and the masked AEs) share its compiled programs and the scoring ones."""
    def pixels(params, x, feature_mask=None):
        if variational:
            return mean_pixels(model, params, x)
        return jax.nn.sigmoid(model.apply(params, x, feature_mask)[0])
    return jax.jit(pixels)


def study_models(config) -> dict[str, ModelSpec]:
    """MODELS, plus the AE at the reference bottleneck when it differs from --latent-dim."""
    models = dict(MODELS)
    if config.reference_latent_dim and config.reference_latent_dim != config.latent_dim:
        models[f"ae_latent{config.reference_latent_dim}"] = ModelSpec(
            f"autoencoder, MSE, {config.reference_latent_dim}-number code (the public reference's bottleneck)",
            latent_dim=config.reference_latent_dim)
    return models


def train_all(args, config, models, train_set, test_set, output, image_shape, channels) -> dict[str, Trained]:
    x = np.zeros((1,) + image_shape, np.float32)
    curve_set = data.subset(test_set, config.curve_examples, config.seed + 2)
    trained = {}
    for i, (name, spec) in enumerate(models.items()):
        rng = jax.random.fold_in(jax.random.key(config.seed), i)
        latent_dim = spec.latent_dim or config.latent_dim
        if spec.variational:
            model = SpatialConvVAE(image_shape, latent_dim, channels)
            initial = model.init(rng, x, jax.random.key(0))
            objective = objectives.vae_objective(model, "bce")
        else:
            model = SpatialConvAE(image_shape, latent_dim, channels)
            initial = model.init(rng, x)
            objective = objectives.autoencoder_objective(model, spec.noise_sigma, spec.mask_ratio, config.mask_patch)
        params, history = train_model(name, initial, objective, train_set, curve_set, config, config.epochs, args,
                                      output, cosine_decay=True)
        trained[name] = Trained(name, spec, model, params, history)
    return trained


def architecture_tables(trained, image_shape):
    x = np.zeros((1,) + image_shape, np.float32)
    ae, vae = trained["ae"], trained["vae"]
    return {"ae": layer_table(ae.model, ae.params, x),
            "vae": layer_table(vae.model, vae.params, x, jax.random.key(0))}


def score_all(trained, test_set, seed) -> dict:
    scores = {}
    for name, model in trained.items():
        by_sigma = reconstruction_scores(model.pixels, model.params, test_set.images, (0.0,) + NOISE_LEVELS, seed)
        scores[name] = {("clean" if sigma == 0 else f"noisy_{sigma:g}"): values for sigma, values in by_sigma.items()}
    return scores


def reconstruction_figures(trained, test_set, output, seed):
    shown = test_set.images[:SHOWN]
    clean = data.to_float(shown)
    rows, labels = [clean], ["original"]
    for sigma in NOISE_LEVELS:
        noisy = noised_images(shown, sigma, seed)
        dae = trained[f"dae_{sigma:g}"]
        rows += [noisy, np.asarray(trained["ae"].reconstruct(noisy)), np.asarray(dae.reconstruct(noisy))]
        labels += [f"noisy σ={sigma:g}", "AE", f"DAE σ={sigma:g}"]
    plots.image_grid(np.concatenate(rows), output.figure("denoising.png"), ncols=SHOWN, row_labels=labels,
                     title="Original / noisy / reconstructed (AE and the DAE trained at that σ)")
    rows = [clean] + [np.asarray(trained[name].reconstruct(clean)) for name in ("ae", "vae")]
    plots.image_grid(np.concatenate(rows), output.figure("vae_vs_ae.png"), ncols=SHOWN,
                     row_labels=["original", "AE", "VAE (mean)"], title="AE and VAE reconstructions")
    histories = {name: trained[name].history for name in DENOISERS}
    plots.loss_curves(histories, ["loss"], output.figure("error_curves.png"),
                      "Average per-pixel MSE per epoch (DAEs: of their noisy inputs' reconstructions)")
    plots.loss_curves({"vae": trained["vae"].history}, ["loss", "recon", "kl"], output.figure("vae_curves.png"),
                      "VAE: negative ELBO, reconstruction (BCE) and KL per epoch, nats per image")
    plots.loss_curves({name: trained[name].history for name in ["ae"] + MASKED}, ["loss"],
                      output.figure("mcae_curves.png"), "Masked conv AEs: per-pixel MSE per epoch (with masks)")


def embedding_figure(trained, test_set, config, output):
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    chosen = np.arange(min(config.embedded_points, len(test_set)))
    labels = test_set.labels[chosen]
    noisy = noised_images(test_set.images[chosen], config.embedding_noise, config.seed)
    panels = {}
    for name in EMBEDDED:
        for condition, images in (("clean", test_set.images[chosen]), (f"noisy σ={config.embedding_noise:g}", noisy)):
            codes = trained[name].codes(images)
            panels[f"{name} PCA, {condition}"] = PCA(2, random_state=config.seed).fit_transform(codes)
            panels[f"{name} t-SNE, {condition}"] = TSNE(2, init="pca", perplexity=min(30, len(chosen) // 4),
                                                        random_state=config.seed).fit_transform(codes)
    plots.scatter_panels(panels, labels, output.figure("latent_embeddings.png"), ncols=4,
                         class_names=test_set.class_names,
                         title=f"Test codes of {len(chosen)} images, coloured by class")


def probe_all(trained, train_set, test_set, config, output) -> tuple[dict, dict]:
    features = {"raw": (data.to_float(train_set.images), data.to_float(test_set.images))}
    features.update({name: (model.codes(train_set.images), model.codes(test_set.images))
                     for name, model in trained.items()})
    accuracy = {}
    for name, (train_features, test_features) in features.items():
        accuracy[name], _ = probes.linear_probe(train_features, train_set.labels, test_features, test_set.labels,
                                                config.probe_iterations)
        print(f"linear probe {name}: {accuracy[name]:.4f}")
    best, worst = max(accuracy, key=accuracy.get), min(accuracy, key=accuracy.get)
    panels, projected = {}, {}
    for role, name in (("best", best), ("worst", worst)):
        fit = probes.projected_probe(*features[name][:1], train_set.labels, features[name][1], test_set.labels)
        projected[role] = {"model": name, "probe_accuracy": accuracy[name], "accuracy_2d": fit["accuracy"]}
        shown = slice(0, 2000)
        panels[f"{role} probe: {name} ({accuracy[name]:.3f}); 2-D: {fit['accuracy']:.3f}"] = (
            fit["test_points"][shown], test_set.labels[shown], fit["classifier"])
    plots.decision_regions(panels, output.figure("decision_regions.png"), test_set.class_names,
                           "Logistic regression on a 2-D PCA projection of the codes (test points shown)")
    return accuracy, projected


def masking_study(trained, test_set, config, output) -> dict:
    """Occlusion heat maps, and the error inside vs outside masked feature patches."""
    images = data.to_float(test_set.images[:config.occluded_images])
    maps = {name: occlusion_sensitivity(trained[name].pixels, trained[name].params, images) for name in ["ae"] + MASKED}
    plots.heatmap_grid(images, maps, output.figure("occlusion_heatmaps.png"),
                       "Rise in reconstruction MSE when an 8x8 grey window covers each region")
    ratios = [trained[name].spec.mask_ratio for name in MASKED]
    errors = {name: {f"{ratio:g}": values for ratio, values in masked_region_errors(
        trained[name].pixels, trained[name].params, test_set.images, ratios, config.mask_patch, config.seed).items()}
        for name in ["ae"] + MASKED}
    return {"occlusion_peak": {name: float(maps[name].max()) for name in maps}, "region_errors": errors}


def vae_latent_study(vae, train_set, test_set, config, output) -> dict:
    names = [n.strip() for n in config.arithmetic.split(",")]
    unknown = [n for n in names if n not in test_set.class_names]
    if len(names) != 3 or unknown:
        raise ConfigError(f"--arithmetic {config.arithmetic}: give three class names A,B,C from "
                          f"{', '.join(test_set.class_names)}")
    a, b, c = (test_set.class_names.index(n) for n in names)
    pair = data.different_class_pairs(test_set.labels, 1, np.random.default_rng(config.seed))[0]
    z = vae.codes(test_set.images[list(pair)])
    path = latent.linear_interpolation(z[0], z[1], INTERPOLATION_STEPS)
    means = latent.class_means(vae.codes(train_set.images), train_set.labels, len(train_set.class_names))
    images_a = np.flatnonzero(test_set.labels == a)[:3]
    z_a = vae.codes(test_set.images[images_a])
    decode = lambda z: decode_pixels(vae.model, vae.params, np.asarray(z, np.float32))  # noqa: E731
    rows = [decode(np.stack([means[a], means[a] - means[b], means[c], means[a] - means[b] + means[c]]))]
    for z_image in z_a:
        rows.append(decode(np.stack([z_image, z_image - means[b], means[c], z_image - means[b] + means[c]])))
    originals = data.to_float(test_set.images[images_a])
    arithmetic = np.concatenate([np.concatenate([rows[0], np.full_like(rows[0][:1], 1.0)])] + [
        np.concatenate([row, originals[i:i + 1]]) for i, row in enumerate(rows[1:])])
    interpolation = np.concatenate([data.to_float(test_set.images[[pair[0]]]), decode(path),
                                    data.to_float(test_set.images[[pair[1]]])])
    plots.image_grid(interpolation, output.figure("vae_interpolation.png"), ncols=INTERPOLATION_STEPS + 2,
                     col_labels=["A"] + [f"{t:.2f}" for t in np.linspace(0, 1, INTERPOLATION_STEPS)] + ["B"],
                     title=f"VAE: {INTERPOLATION_STEPS} steps from z_A ({test_set.class_names[test_set.labels[pair[0]]]})"
                           f" to z_B ({test_set.class_names[test_set.labels[pair[1]]]})")
    plots.image_grid(arithmetic, output.figure("vae_arithmetic.png"), ncols=5,
                     row_labels=["class means"] + [f"{names[0]} #{i}" for i in images_a],
                     col_labels=[names[0], f"{names[0]} − {names[1]}", f"{names[2]}",
                                 f"{names[0]} − {names[1]} + {names[2]}", "input"],
                     title=f"Latent arithmetic: {names[0]} − {names[1]} + {names[2]} (class means; per image)")
    return {"interpolation_pair": [{"index": int(i), "class": test_set.class_names[test_set.labels[i]]} for i in pair],
            "arithmetic": {"a": names[0], "b": names[1], "c": names[2], "images": images_a.tolist()}}


def main(argv=None):
    args, config = parse_study_args(study_parser(NAME, __doc__.splitlines()[0], get_config), argv)
    output = StudyOutput(NAME, args, config)
    train_set, test_set = load_data(config, args.data_dir)
    image_shape = tuple(train_set.images.shape[1:])
    models = study_models(config)
    try:
        for latent_dim in {spec.latent_dim or config.latent_dim for spec in models.values()}:
            SpatialConvAE(image_shape, latent_dim, config.channels).init(jax.random.key(0),
                                                                         np.zeros((1,) + image_shape))
    except ValueError as error:
        raise ConfigError(f"--latent-dim / --reference-latent-dim / --channels: {error}") from None
    output.open()

    trained = train_all(args, config, models, train_set, test_set, output, image_shape, config.channels)
    results = {"budget": output.budget, "config": config.to_dict(), "train_examples": len(train_set),
               "test_examples": len(test_set), "data_source": train_set.source, "noise_clipped": True,
               "models": {name: spec.__dict__ for name, spec in models.items()}}
    results["layer_tables"] = architecture_tables(trained, image_shape)
    results["history"] = {name: model.history for name, model in trained.items()}
    output.phase("training")
    results.update(score_all(trained, test_set, config.seed))
    output.phase("test metrics")
    reconstruction_figures(trained, test_set, output, config.seed)
    embedding_figure(trained, test_set, config, output)
    output.phase("reconstruction and embedding figures")
    results["probe"], results["decision_regions"] = probe_all(trained, train_set, test_set, config, output)
    output.phase("linear probes")
    results["masking"] = masking_study(trained, test_set, config, output)
    results["vae_latent"] = vae_latent_study(trained["vae"], train_set, test_set, config, output)
    output.phase("masking and VAE latent figures")
    output.finish(results, write_report(results))


def write_report(results) -> str:
    config = results["config"]
    conditions = ["clean"] + [f"noisy_{s:g}" for s in NOISE_LEVELS]
    metric_rows = [[name] + [results[name][c][m] for c in conditions for m in ("mse", "mae", "psnr", "ssim")]
                   for name in results["models"]]
    metric_headers = ["model"] + [f"{c} {m}" for c in conditions for m in ("MSE", "MAE", "PSNR", "SSIM")]
    probe = results["probe"]
    regions = results["decision_regions"]
    masking = results["masking"]["region_errors"]
    masking_rows = [[name, ratio, e["masked_mse"], e["unmasked_mse"], e["no_mask_mse"]]
                    for name, by_ratio in masking.items() for ratio, e in by_ratio.items()]
    ae_params = sum(r["parameters"] for r in results["layer_tables"]["ae"])
    vae_params = sum(r["parameters"] for r in results["layer_tables"]["vae"])
    pair = results["vae_latent"]["interpolation_pair"]
    arithmetic = results["vae_latent"]["arithmetic"]
    reference = [name for name, spec in results["models"].items() if spec["latent_dim"]]
    reference_note = "".join(
        f"`{name}` is the same AE with a {results['models'][name]['latent_dim']}-number code "
        f"(an 8x8 map of {results['models'][name]['latent_dim'] // 64} channels), the bottleneck of the public "
        "reference numbers.\n" for name in reference)
    return f"""# CIFAR-10 autoencoders: AE, denoising AEs, VAE, masked conv AEs

Data: `{results['data_source']}`, {results['train_examples']:,} train / {results['test_examples']:,} test images.
Budget: {results['budget']}, {config['epochs']} epochs per model, batch {config['batch_size']}, Adam
{config['learning_rate']:g} with cosine decay, seed {config['seed']}. Latent size **{config['latent_dim']}**
(an 8x8 code map). Noisy inputs are clipped to [0, 1], in training and in evaluation; the noise of each σ is the
same for every model.

## Models

{markdown_table(["model", "what"], [[name, spec["description"]] for name, spec in results["models"].items()])}

AE, every DAE and every MCAE share this architecture ({ae_params:,} parameters); the MCAEs multiply the output of
conv1 (16x16 feature maps) by a mask that zeroes {config['mask_patch']}x{config['mask_patch']} feature patches.
{reference_note}

{layer_table_markdown(results['layer_tables']['ae'])}

The VAE ({vae_params:,} parameters): its code map has twice the channels, the mean and the log-variance.

{layer_table_markdown(results['layer_tables']['vae'])}

## Reconstruction on the test set (targets are the clean images)

{markdown_table(metric_headers, metric_rows)}

![error curves](error_curves.png)
![denoising](denoising.png)
![AE vs VAE](vae_vs_ae.png)
![VAE curves](vae_curves.png)
![MCAE curves](mcae_curves.png)

## Latent space

![latent embeddings](latent_embeddings.png)

Linear probes (logistic regression on frozen codes of all training images; test accuracy; chance 0.1):

{markdown_table(["features", "test accuracy"], [[name, acc] for name, acc in probe.items()])}

Decision regions of a logistic regression on the 2-D PCA projection of the best ({regions['best']['model']},
2-D accuracy {regions['best']['accuracy_2d']:.3f}) and the worst ({regions['worst']['model']}, 2-D accuracy
{regions['worst']['accuracy_2d']:.3f}) probe's features:

![decision regions](decision_regions.png)

## Masking: which regions matter, and is global information kept?

![occlusion heat maps](occlusion_heatmaps.png)

Test MSE per pixel inside the image regions under masked feature patches, outside them, and with no mask at all,
for masks of each ratio (the AE never saw masks in training):

{markdown_table(["model", "mask ratio", "masked regions", "unmasked regions", "no mask"], masking_rows)}

## VAE latent space

Interpolation, {INTERPOLATION_STEPS} steps, from test image {pair[0]['index']} ({pair[0]['class']}) to
{pair[1]['index']} ({pair[1]['class']}):

![VAE interpolation](vae_interpolation.png)

Latent arithmetic {arithmetic['a']} − {arithmetic['b']} + {arithmetic['c']}: first row with the class-mean
latents of the training set, then for test {arithmetic['a']} images {arithmetic['images']}: their own latent
− mean {arithmetic['b']} + mean {arithmetic['c']} (last column: the input).

![VAE arithmetic](vae_arithmetic.png)
"""


if __name__ == "__main__":
    common.entry_point(main)
