"""The MNIST VAE study: MLP and conv VAEs, a digit classifier as judge, interpolation, latent structure.

    python -m experiments.mnist_vae            # full budget, ~30 min on 2 CPU cores
    python -m experiments.mnist_vae --quick    # same code path, small budget, about a minute

The config (budget, latent size) is experiments/configs/mnist_vae.py; --help lists its flags.
"""
from __future__ import annotations

import jax
import numpy as np
from scipy.stats import norm
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE

from experiments import common
from experiments.common import StudyOutput, markdown_table, parse_study_args, study_parser, train_model
from experiments.configs.mnist_vae import get_config
from jaxgen import checkpoints, data, latent, metrics, objectives, plots, train
from jaxgen.vae import decode_pixels, encode_means, reconstruction_metrics
from jaxgen.models.autoencoders import MLPVAE, MnistConvVAE
from jaxgen.models.classifiers import DigitCNN, class_probabilities

NAME = "mnist_vae"


MLP_WIDTHS = {"fc_100": (100, 100), "fc_200": (200, 200), "fc_300": (300, 300)}
INTERPOLATION_PAIRS = [(4, 7), (3, 8), (0, 6)]
INTERPOLATION_STEPS = 10
SHOWN_PRIOR_SAMPLES = 15
MANIFOLD_SIZE = 20


def importance_weighted_nll(model, params, images, num_samples, seed, images_per_call=2):
    """-log p(x) in nats per image, estimated with `num_samples` importance samples."""
    base_rng = jax.random.key(seed + 12345)
    decode = lambda z: model.apply(params, z, method=model.decode)  # noqa: E731

    def per_batch(batch, index):
        x = data.to_float_jax(batch["image"])
        mean, logvar = model.apply(params, x, method=model.encode)
        return -metrics.iw_log_likelihood(jax.random.fold_in(base_rng, index), x, mean, logvar, decode, num_samples)
    return train.batched_apply(per_batch, {"image": images}, images_per_call, desc="IW log-likelihood")


def seeded_example_of_class(labels, digit, rng):
    """A seeded random test example of class `digit`."""
    return int(rng.choice(np.flatnonzero(labels == digit)))


def main(argv=None):
    args, config = parse_study_args(study_parser(NAME, __doc__.splitlines()[0], get_config), argv)
    output = StudyOutput(NAME, args, config)
    train_set = data.subset(data.load("mnist", "train", args.data_dir), config.train_examples)
    test_set = data.subset(data.load("mnist", "test", args.data_dir), config.test_examples)
    output.open()
    rng = jax.random.key(config.seed)
    x_example = np.zeros((1, 28, 28, 1), np.float32)
    results = {"dataset": "mnist", "data_source": train_set.source, "budget": output.budget,
               "config": config.to_dict()}
    report = [f"# MNIST VAE study\n\nData: `{train_set.source}` ({len(train_set):,} train / {len(test_set):,} test "
              f"images, grey levels in [0, 1]). Budget: {output.budget} ({config.epochs} VAE epochs, batch "
              f"{config.batch_size}, learning rate {config.learning_rate:g}), seed {config.seed}.\n"]

    # 1-2. Three MLP VAEs, the conv VAE and the 2-D-latent MLP VAE, all with BCE + analytic KL.
    vaes = {name: MLPVAE(widths, config.latent_dim) for name, widths in MLP_WIDTHS.items()}
    vaes["conv"] = MnistConvVAE(config.latent_dim)
    vaes["fc_2d"] = MLPVAE((300, 300), 2)
    params, histories = {}, {}
    for i, (name, model) in enumerate(vaes.items()):
        initial = model.init(jax.random.fold_in(rng, i), x_example, jax.random.key(0))
        params[name], histories[name] = train_model(name, initial, objectives.vae_objective(model),
                                                    train_set, test_set, config, config.epochs, args, output)
        n_params = sum(x.size for x in jax.tree.leaves(params[name]))
        scores = reconstruction_metrics(model, params[name], test_set.images, config.seed)
        results[name] = {"test_neg_elbo": scores["neg_elbo"], "test": scores, "history": histories[name],
                         "num_params": n_params}
        prior_z = jax.random.normal(jax.random.fold_in(rng, 100 + i), (SHOWN_PRIOR_SAMPLES, model.latent_dim))
        plots.image_grid(decode_pixels(model, params[name], prior_z), output.figure(f"prior_samples_{name}.png"),
                         ncols=SHOWN_PRIOR_SAMPLES, title=f"{name}: decoded N(0, I) samples")
        originals = test_set.images[:12].astype(np.float32) / 255
        recon = decode_pixels(model, params[name], encode_means(model, params[name], test_set.images[:12]))
        plots.image_grid(np.concatenate([originals, recon]), output.figure(f"reconstructions_{name}.png"), ncols=12,
                         row_labels=["original", "reconstructed"], title=f"{name}: test reconstructions")
    checkpoints.save_params(output.model_dir("conv_vae"), params["conv"],
                            {"model": "MnistConvVAE", "latent_dim": config.latent_dim})
    plots.loss_curves({k: histories[k] for k in MLP_WIDTHS}, ["loss", "recon", "kl"],
                      output.figure("loss_curves_mlp.png"), "MLP VAEs: negative ELBO, reconstruction, KL (nats)")
    plots.loss_curves({k: histories[k] for k in ("conv", "fc_2d")}, ["loss", "recon", "kl"],
                      output.figure("loss_curves_conv_2d.png"), "Conv VAE and 2-D-latent VAE")

    # The importance-weighted log-likelihood of the conv VAE on a seeded test subset.
    iw_index = np.sort(np.random.default_rng(config.seed).choice(len(test_set), min(config.iw_images, len(test_set)),
                                                               replace=False))
    nll = importance_weighted_nll(vaes["conv"], params["conv"], test_set.images[iw_index], config.iw_samples,
                                  config.seed)
    results["conv"]["test_nll_iw"] = float(np.mean(nll))
    results["conv"]["iw"] = {"num_samples": config.iw_samples, "num_images": len(iw_index),
                             "subset": f"np.random.default_rng({config.seed}).choice(test size, {len(iw_index)}) "
                                       "without replacement", "std_error": float(np.std(nll) / np.sqrt(len(nll)))}

    # 3. A digit classifier judges decoded prior samples of the conv VAE.
    classifier = DigitCNN()
    classifier_params, classifier_history = train_model(
        "classifier", classifier.init(jax.random.fold_in(rng, 50), x_example),
        objectives.classifier_objective(classifier), train_set, test_set, config, config.classifier_epochs,
        args, output, cosine_decay=True)
    checkpoints.save_params(output.model_dir("classifier"), classifier_params, {"model": "DigitCNN"})
    results["classifier"] = {"test_accuracy": classifier_history["test"]["accuracy"][-1],
                             "history": classifier_history}
    prior_z = jax.random.normal(jax.random.fold_in(rng, 200), (config.prior_samples, config.latent_dim))
    samples = decode_pixels(vaes["conv"], params["conv"], prior_z)
    probabilities = class_probabilities(classifier, classifier_params, samples)
    predicted = probabilities.argmax(-1)
    histogram = np.bincount(predicted, minlength=10)
    results["prior_samples"] = {"num_samples": config.prior_samples, "class_histogram": histogram.tolist(),
                                "mean_confidence": float(probabilities.max(-1).mean()),
                                "fraction_confident_0.9": float((probabilities.max(-1) >= 0.9).mean())}
    plots.bar_chart(histogram, [str(d) for d in range(10)], output.figure("prior_samples_class_histogram.png"),
                    f"Classifier's labels for {config.prior_samples} conv-VAE prior samples", "count")
    embedding = TSNE(2, init="pca", random_state=config.seed, perplexity=min(30, len(samples) // 4)).fit_transform(
        samples.reshape(len(samples), -1))
    plots.scatter_by_class(embedding, predicted, output.figure("prior_samples_tsne.png"),
                           title="t-SNE of decoded prior samples, coloured by predicted digit")

    # 4. Interpolation between test digits in the conv VAE's latent space.
    pick = np.random.default_rng(config.seed)
    sequences, row_labels, pairs = [], [], []
    for a, b in INTERPOLATION_PAIRS:
        ia, ib = seeded_example_of_class(test_set.labels, a, pick), seeded_example_of_class(test_set.labels, b, pick)
        z = encode_means(vaes["conv"], params["conv"], test_set.images[[ia, ib]])
        sequences.append(decode_pixels(vaes["conv"], params["conv"], latent.linear_interpolation(z[0], z[1],
                                                                                                 INTERPOLATION_STEPS)))
        row_labels.append(f"{a} -> {b}")
        pairs.append({"from": {"digit": a, "test_index": ia}, "to": {"digit": b, "test_index": ib}})
    plots.image_grid(np.concatenate(sequences), output.figure("interpolation.png"), ncols=INTERPOLATION_STEPS,
                     row_labels=row_labels, title="Conv VAE: linear interpolation of latent means")
    results["interpolation"] = {"steps": INTERPOLATION_STEPS, "pairs": pairs}

    # 5a. The 2-D latent: test means by label, and the decoded manifold over Gaussian quantiles.
    means_2d = encode_means(vaes["fc_2d"], params["fc_2d"], test_set.images)
    plots.scatter_by_class(means_2d, test_set.labels, output.figure("latent_2d_scatter.png"),
                           title="2-D VAE: test-set latent means")
    quantiles = norm.ppf(np.linspace(0.05, 0.95, MANIFOLD_SIZE)).astype(np.float32)
    grid = np.stack(np.meshgrid(quantiles, quantiles[::-1]), -1).reshape(-1, 2)
    plots.image_grid(decode_pixels(vaes["fc_2d"], params["fc_2d"], grid), output.figure("latent_2d_manifold.png"),
                     ncols=MANIFOLD_SIZE, scale=0.45, title="2-D VAE: decoded manifold over N(0,1) quantiles 5-95%")

    # 5b. A 10-component Gaussian mixture on the conv VAE's 20-D latent means, as a clustering of digits.
    train_means = encode_means(vaes["conv"], params["conv"], train_set.images)
    test_means = encode_means(vaes["conv"], params["conv"], test_set.images)
    gmm_scores, gmm = latent.gmm_clustering(train_means, train_set.labels, test_means, test_set.labels, 10, config.seed)
    results["gmm"] = gmm_scores
    pca = PCA(2, random_state=config.seed).fit(train_means)
    projected_cov = np.einsum("ij,kjl,ml->kim", pca.components_, gmm.covariances_, pca.components_)
    plots.gaussian_ellipses(pca.transform(test_means), test_set.labels, pca.transform(gmm.means_), projected_cov,
                            output.figure("gmm_clusters_pca.png"),
                            "GMM components on the first 2 PCs of conv-VAE test latents",
                            [str(c) for c in gmm_scores["component_to_label"]])

    output.finish(results, "\n".join(report + [write_report(results, vaes)]))


def write_report(results, vaes) -> str:
    models = list(vaes)
    rows = [[m, results[m]["num_params"], results[m]["test_neg_elbo"], results[m]["test"]["recon"],
             results[m]["test"]["kl"], results[m]["test"]["mse"], results[m]["test"]["psnr"],
             results[m]["test"]["ssim"]] for m in models]
    iw = results["conv"]["iw"]
    gmm = results["gmm"]
    figures = "\n".join(f"![{f}]({f}.png)" for f in
                        ["loss_curves_mlp", "loss_curves_conv_2d"] + [f"prior_samples_{m}" for m in models]
                        + [f"reconstructions_{m}" for m in models])
    return f"""
## Test metrics (nats per image; reconstructions from the latent mean)

{markdown_table(["model", "parameters", "neg. ELBO", "BCE", "KL", "MSE", "PSNR (dB)", "SSIM"], rows)}

Conv VAE importance-weighted NLL (k = {iw['num_samples']}, {iw['num_images']} seeded test images):
**{results['conv']['test_nll_iw']:.2f} ± {iw['std_error']:.2f} nats** (its single-sample negative ELBO is
{results['conv']['test_neg_elbo']:.2f}; the gap is the looseness of the bound).

## The classifier's view of prior samples

Digit classifier test accuracy: **{100 * results['classifier']['test_accuracy']:.2f}%**.
Predicted classes of {results['prior_samples']['num_samples']} decoded conv-VAE prior samples:
{results['prior_samples']['class_histogram']} (mean confidence {results['prior_samples']['mean_confidence']:.3f};
{100 * results['prior_samples']['fraction_confident_0.9']:.1f}% at ≥ 0.9).

![histogram](prior_samples_class_histogram.png)
![t-SNE](prior_samples_tsne.png)

## Interpolation

![interpolation](interpolation.png)

## Latent structure

![2-D latents](latent_2d_scatter.png)
![manifold](latent_2d_manifold.png)

A 10-component full-covariance GMM on the conv VAE's training latent means, components named by the majority
label of their training members ({gmm['labels_covered']} of 10 digits covered): test accuracy
**{gmm['accuracy']:.3f}**, macro precision {gmm['precision_macro']:.3f}, recall {gmm['recall_macro']:.3f},
F1 {gmm['f1_macro']:.3f}.

![GMM](gmm_clusters_pca.png)

## All figures

{figures}
"""


if __name__ == "__main__":
    common.entry_point(main)
