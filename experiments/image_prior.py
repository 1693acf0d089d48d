"""An autoencoder image prior with a bounded latent, its failure on outliers, a uniformity fix, and restoration.

    python -m experiments.image_prior            # full budget, ~20 min on 2 CPU cores
    python -m experiments.image_prior --quick    # same code path, tiny budget, < 2 min

The config (budget, code size, weights, corruptions) is experiments/configs/image_prior.py; --help lists its flags.

The prior is P(I) ~ exp(-|D(E(I)) - I| / T) with E ending in a sigmoid, so codes lie in [0, 1]^d.
The naive model minimises the reconstruction error only; the regularised one adds
uniformity_weight x SW2^2(codes, Uniform[0, 1]^d) (see jaxgen/uniformity.py for the derivation).
"""
from __future__ import annotations

import jax
import numpy as np
from sklearn.metrics import roc_auc_score

from experiments import common
from experiments.common import StudyOutput, markdown_table, parse_study_args, study_parser, train_model
from experiments.configs.image_prior import get_config
from jaxgen import data, metrics, objectives, plots, restoration
from jaxgen.models.autoencoders import BoundedAE
from jaxgen.train import batched_apply
from jaxgen.models.classifiers import DigitCNN, class_probabilities
from jaxgen.uniformity import uniformity_report
from jaxgen.vae import decode_pixels, encode_images

NAME = "image_prior"
VARIANTS = ("naive", "regularized")
TEMPERATURES = (0.001, 0.003, 0.01, 0.03, 0.1, 1.0)
PLANES = ((0, 1), (2, 3), (4, 5), (6, 7))


def energies(model, params, images, batch_size=500):
    """Per-image prior energy |D(E(x)) - x|_2 for float images in [0, 1]."""
    return batched_apply(lambda batch, _: restoration.prior_energy(model, params, batch["image"]),
                         {"image": images}, batch_size)


def outlier_sets(test_images, count, seed, data_dir):
    """Float (N, 28, 28, 1) outliers: CIFAR-10 test images in grey at 28x28, uniform noise, inverted digits."""
    rng = np.random.default_rng(seed)
    digits = data.to_float(test_images[rng.choice(len(test_images), count, replace=False)])
    sets = {"noise": rng.random((count, 28, 28, 1)).astype(np.float32), "inverted": 1.0 - digits}
    try:
        cifar = data.load("cifar10", "test", data_dir)
        chosen = data.to_float(cifar.images[rng.choice(len(cifar), count, replace=False)])
        grey = chosen @ np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R 601 luma
        sets["cifar10_grey"] = np.asarray(jax.image.resize(grey[..., None], (count, 28, 28, 1), "linear",
                                                           antialias=True)).clip(0, 1)
    except data.DataNotFoundError:
        print("CIFAR-10 not found: the cifar10_grey outliers are left out")
    return sets


def restoration_scores(model, params, clean, observed, mask, sigma, temperature, steps):
    restored, objective = restoration.restore(model, params, observed, mask, sigma, temperature, steps)
    return restored, {"temperature": temperature, "psnr": float(np.mean(metrics.psnr(restored, clean))),
                      "ssim": float(np.mean(metrics.ssim(restored, clean))),
                      "objective_start": float(objective[0]), "objective_end": float(objective[-1])}


def main(argv=None):
    args, config = parse_study_args(study_parser(NAME, __doc__.splitlines()[0], get_config), argv)
    output = StudyOutput(NAME, args, config)
    train_set = data.subset(data.load("mnist", "train", args.data_dir), config.train_examples, config.seed)
    test_set = data.subset(data.load("mnist", "test", args.data_dir), config.test_examples, config.seed)
    rng = jax.random.key(config.seed)
    pick = np.random.default_rng(config.seed)
    output.open()
    results = {"dataset": "mnist", "budget": output.budget, "config": config.to_dict(),
               "temperatures": list(TEMPERATURES)}
    x_example = np.zeros((1, 28, 28, 1), np.float32)

    # The judge of decoded codes: a digit classifier.
    classifier = DigitCNN()
    classifier_params, classifier_history = train_model(
        "classifier", classifier.init(jax.random.fold_in(rng, 50), x_example),
        objectives.classifier_objective(classifier), train_set, test_set, config, config.classifier_epochs, args,
        output, cosine_decay=True)
    results["classifier_test_accuracy"] = classifier_history["test"]["accuracy"][-1]

    # Shared inputs: outliers, and the restoration problems (validation images pick T, evaluation images score it).
    digit_index = pick.choice(len(test_set), min(config.outliers_per_kind, len(test_set)), replace=False)
    inliers = data.to_float(test_set.images[digit_index])
    outliers = outlier_sets(test_set.images, len(digit_index), config.seed, args.data_dir)
    chosen = pick.choice(len(test_set), config.validation_images + config.restoration_images, replace=False)
    problems = {}
    for split, index in (("validation", chosen[:config.validation_images]),
                         ("evaluation", chosen[config.validation_images:])):
        clean = data.to_float(test_set.images[index])
        noise_rng = jax.random.fold_in(rng, 70 + len(problems))
        noisy = np.asarray(clean + config.noise_sigma * jax.random.normal(noise_rng, clean.shape))
        block = restoration.central_block_mask((28, 28), config.inpaint_block)
        problems[split] = {"clean": clean,
                           "denoise": (noisy, np.ones_like(block)),
                           "inpaint": (clean * block, block)}
    evaluation = problems["evaluation"]
    results["corrupted"] = {task: {"psnr": float(np.mean(metrics.psnr(evaluation[task][0].clip(0, 1),
                                                                        evaluation["clean"]))),
                                   "ssim": float(np.mean(metrics.ssim(evaluation[task][0].clip(0, 1),
                                                                      evaluation["clean"])))}
                            for task in ("denoise", "inpaint")}
    results["restoration_T_sweep"] = {}
    restored_examples = {}

    for v, variant in enumerate(VARIANTS):
        model = BoundedAE((28, 28, 1), config.code_dim)
        weight = 0.0 if variant == "naive" else config.uniformity_weight
        params, history = train_model(variant, model.init(jax.random.fold_in(rng, v), x_example),
                                      objectives.bounded_ae_objective(model, weight), train_set, test_set, config,
                                      config.epochs, args, output)
        scores = {"history": history, "test_recon": history["test"]["recon"][-1]}

        # 2. How the test codes fill the cube.
        codes = encode_images(model, params, test_set.images)
        scores["code_range"] = [float(codes.min()), float(codes.max())]
        scores["uniformity"] = uniformity_report(codes, config.seed)
        shown = pick.choice(len(codes), min(config.scatter_codes, len(codes)), replace=False)
        plots.coordinate_planes(codes[shown], test_set.labels[shown], PLANES, output.figure(f"codes_{variant}.png"),
                                f"{variant}: {len(shown)} test codes in four coordinate planes of [0, 1]^{config.code_dim}")

        # 3. Does the energy reject outliers? And what do uniform codes decode to?
        inlier_energy = energies(model, params, inliers)
        outlier_energy = {kind: energies(model, params, images) for kind, images in outliers.items()}
        scores["energy_mean"] = {"mnist": float(inlier_energy.mean()),
                                 **{k: float(e.mean()) for k, e in outlier_energy.items()}}
        auroc = {kind: float(roc_auc_score(np.r_[np.zeros(len(inlier_energy)), np.ones(len(e))],
                                           np.r_[inlier_energy, e])) for kind, e in outlier_energy.items()}
        everything = np.concatenate(list(outlier_energy.values()))
        auroc["all"] = float(roc_auc_score(np.r_[np.zeros(len(inlier_energy)), np.ones(len(everything))],
                                           np.r_[inlier_energy, everything]))
        scores["outlier_auroc"] = auroc
        plots.histograms({"MNIST test": inlier_energy, **outlier_energy}, output.figure(f"energies_{variant}.png"),
                         f"{variant}: prior energy |D(E(x)) - x| of digits and outliers", "energy")
        uniform_codes = jax.random.uniform(jax.random.fold_in(rng, 90 + v), (config.uniform_decodes, config.code_dim))
        decoded = decode_pixels(model, params, uniform_codes)
        confidence = class_probabilities(classifier, classifier_params, decoded).max(axis=1)
        scores["uniform_decode_confident_fraction"] = float(np.mean(confidence >= 0.9))
        plots.image_grid(decoded[:30], output.figure(f"uniform_decodes_{variant}.png"), ncols=15, scale=0.6,
                         title=f"{variant}: decoded codes drawn uniformly from the cube")

        # 5. Restoration: choose T on the validation images, score it on the evaluation images.
        sweep = {}
        for task in ("denoise", "inpaint"):
            sweep[task] = []
            for temperature in TEMPERATURES:
                observed, mask = problems["validation"][task]
                sweep[task].append(restoration_scores(model, params, problems["validation"]["clean"], observed,
                                                      mask, config.noise_sigma, temperature,
                                                      config.restoration_steps)[1])
            best = max(sweep[task], key=lambda row: row["psnr"])["temperature"]
            observed, mask = evaluation[task]
            restored, scores[task] = restoration_scores(model, params, evaluation["clean"], observed, mask,
                                                        config.noise_sigma, best, config.restoration_steps)
            scores[task]["temperature_chosen_on"] = "validation PSNR"
            restored_examples[(variant, task)] = restored[:8]
        results["restoration_T_sweep"][variant] = sweep
        results[variant] = scores

    for task in ("denoise", "inpaint"):
        clean = evaluation["clean"][:8]
        rows = [clean, evaluation[task][0][:8].clip(0, 1)]
        rows += [restored_examples[(v, task)] for v in VARIANTS]
        plots.image_grid(np.concatenate(rows), output.figure(f"restoration_{task}.png"), ncols=8,
                         row_labels=["clean", "corrupted"] + [f"{v} T={results[v][task]['temperature']:g}"
                                                             for v in VARIANTS],
                         title=f"{task}: clean / corrupted / restored with each prior")
    plots.loss_curves({v: results[v]["history"] for v in VARIANTS}, ["recon", "uniformity"],
                      output.figure("loss_curves.png"), "Reconstruction error and SW2^2 to the uniform cube")
    output.finish(results, write_report(results))


def write_report(results) -> str:
    rows = []
    for v in VARIANTS:
        r = results[v]
        rows.append([v, r["test_recon"], r["uniformity"]["ks_mean"], r["uniformity"]["sliced_w2_joint"],
                     r["uniformity"]["mmd_joint"], r["uniformity"]["occupied_orthants"], r["outlier_auroc"]["all"],
                     r["uniform_decode_confident_fraction"]])
    kinds = [k for k in results["naive"]["outlier_auroc"]]
    auroc_rows = [[v] + [results[v]["outlier_auroc"][k] for k in kinds] for v in VARIANTS]
    restore_rows = [["corrupted input", "-", results["corrupted"]["denoise"]["psnr"],
                     results["corrupted"]["denoise"]["ssim"], "-", results["corrupted"]["inpaint"]["psnr"],
                     results["corrupted"]["inpaint"]["ssim"]]]
    restore_rows += [[v, results[v]["denoise"]["temperature"], results[v]["denoise"]["psnr"],
                      results[v]["denoise"]["ssim"], results[v]["inpaint"]["temperature"],
                      results[v]["inpaint"]["psnr"], results[v]["inpaint"]["ssim"]] for v in VARIANTS]
    sweep_rows = []
    for v in VARIANTS:
        for task in ("denoise", "inpaint"):
            for row in results["restoration_T_sweep"][v][task]:
                sweep_rows.append([v, task, row["temperature"], row["psnr"], row["ssim"]])
    verdict = []
    for key, better in (("outlier AUROC", results["regularized"]["outlier_auroc"]["all"]
                         > results["naive"]["outlier_auroc"]["all"]),
                        ("denoising PSNR", results["regularized"]["denoise"]["psnr"]
                         > results["naive"]["denoise"]["psnr"]),
                        ("inpainting PSNR", results["regularized"]["inpaint"]["psnr"]
                         > results["naive"]["inpaint"]["psnr"])):
        verdict.append(f"{key}: the regularised prior is **{'better' if better else 'not better'}**")
    return f"""# An autoencoder image prior with a bounded latent

MNIST, {results['budget']} budget, seed {results['config']['seed']}.
Codes in [0, 1]^{results['config']['code_dim']} (sigmoid encoder).
Prior P(I) ∝ exp(−‖D(E(I)) − I‖₂ / T). Both models minimise the squared reconstruction error (the same
minimiser as the norm, with smoother gradients); the regularised one adds
{results['config']['uniformity_weight']:g} × SW₂²(codes, Uniform[0, 1]^d).

## The regulariser

The sliced 2-Wasserstein distance to the uniform cube, SW₂²(P, U) = E_θ W₂²(θ·P, θ·U) over random unit
directions θ. In one dimension W₂² between two samples of equal size n is the mean squared difference of the
sorted values, so for each batch we draw 64 directions and n uniform points, project, sort and compare. By the
Cramér–Wold theorem it vanishes only when every 1-D projection of the code distribution is uniform-cube-like,
i.e. when the codes fill the cube. It is analytical (no critic network), and its gradient moves each code towards
the uniform sample of the same rank along each direction, which pushes clustered codes apart into the empty
regions. Digit classifier (the judge below): {100 * results['classifier_test_accuracy']:.2f}% test accuracy.

## How the codes fill the cube, and whether the prior rejects outliers

ks_mean: mean over dimensions of the Kolmogorov–Smirnov statistic against U[0, 1] (0 = uniform marginals);
SW₂² joint over 500 fixed directions; MMD² to 2,000 uniform points (Gaussian kernel, bandwidth 0.2√d);
orthants: fraction of the 2^d half-cube cells holding a test code. AUROC: energy as a score for
"outlier" against MNIST test digits. Confident: fraction of decoded uniform codes the classifier labels with
confidence ≥ 0.9.

{markdown_table(["prior", "test recon (SSE)", "KS mean", "SW₂² joint", "MMD² joint", "orthants", "AUROC (all)",
                 "confident"], rows)}

Outlier AUROC by kind:

{markdown_table(["prior"] + kinds, auroc_rows)}

![naive codes](codes_naive.png)
![regularised codes](codes_regularized.png)
![naive energies](energies_naive.png)
![regularised energies](energies_regularized.png)
![naive uniform decodes](uniform_decodes_naive.png)
![regularised uniform decodes](uniform_decodes_regularized.png)
![loss curves](loss_curves.png)

## Restoration

Minimising −log P(x|y) = ‖m ⊙ (x − y)‖² / 2s² + ‖D(E(x)) − x‖ / T over the image x (Adam, lr 0.01,
{results['config']['restoration_steps']} steps from x = y, projected onto [0, 1]); s = {results['config']['noise_sigma']:g}.
Denoising: y = x + N(0, s²) (not clipped), m = 1. Inpainting: the central {results['config']['inpaint_block']}×{results['config']['inpaint_block']}
block is removed (y = 0 there, m = 0 there). T is chosen by PSNR on {results['config']['validation_images']}
validation test images and scored on {results['config']['restoration_images']} other test images.

{markdown_table(["prior", "denoise T", "denoise PSNR", "denoise SSIM", "inpaint T", "inpaint PSNR", "inpaint SSIM"],
                restore_rows)}

{chr(10).join('- ' + line for line in verdict)}

![denoising](restoration_denoise.png)
![inpainting](restoration_inpaint.png)

### The T sweep (validation images)

{markdown_table(["prior", "task", "T", "PSNR", "SSIM"], sweep_rows)}
"""


if __name__ == "__main__":
    common.entry_point(main)
