"""An autoencoder image prior with a bounded latent, its failure on outliers, a uniformity fix, and restoration.

    python -m experiments.image_prior            # full budget: 3 seeds x 3 autoencoders
    python -m experiments.image_prior --quick    # same code path, tiny budget

The config (budget, seeds, digits, code size, weights, corruptions, temperatures) is
experiments/configs/image_prior.py; --help lists its flags.

The prior is P(I) ~ exp(-|D(E(I)) - I| / T) with E ending in a sigmoid, so codes lie in [0, 1]^d. Three
autoencoders, the same conv encoder and decoder, trained on the inlier digits only (0-4 by default):
  naive        the assignment's model: sigmoid code, nothing else, loss |D(E(I)) - I|;
  layernorm    a named variant: a LayerNorm before the sigmoid, squared error (this study's earlier model);
  regularized  the naive model plus uniformity_weight x SW2^2(codes, Uniform[0, 1]^d) (jaxgen/uniformity.py).
Each is trained under every seed of the config; the headline numbers are mean ± std over the seeds.
"""
from __future__ import annotations

import jax
import numpy as np

from experiments import common
from experiments.common import StudyOutput, markdown_table, parse_study_args, study_parser, train_model
from experiments.configs.image_prior import get_config
from jaxgen import data, metrics, objectives, outliers, plots, restoration
from jaxgen.models.autoencoders import BoundedAE
from jaxgen.models.classifiers import DigitCNN, class_probabilities
from jaxgen.train import batched_apply
from jaxgen.uniformity import uniformity_report
from jaxgen.vae import decode_pixels, encode_images

NAME = "image_prior"
# name: (LayerNorm before the sigmoid, reconstruction term, regularised)
MODELS = {"naive": (False, "norm", False), "layernorm": (True, "squared", False), "regularized": (False, "norm", True)}
VARIANTS = tuple(MODELS)
PLANES = ((0, 1), (2, 3), (4, 5), (6, 7))
TASKS = ("denoise", "inpaint")
# The headline metrics, and whether larger is better.
UNIFORMITY = {"ks_mean": False, "sliced_w2_joint": False, "mmd_joint": False, "occupied_orthants": True}
RESTORATION = {"denoise_psnr": True, "denoise_ssim": True, "inpaint_psnr": True, "inpaint_ssim": True}


def energies(model, params, images, batch_size=500):
    """Per-image prior energy |D(E(x)) - x|_2 for float images in [0, 1]."""
    return batched_apply(lambda batch, _: restoration.prior_energy(model, params, batch["image"]),
                         {"image": images}, batch_size)


def outlier_sets(held_out_digits, inlier_digits, count, seed, data_dir):
    """Float (N, 28, 28, 1) outlier sets: test digits of the classes held out of training, CIFAR-10 test images
    in grey at 28x28, uniform noise, inverted inlier digits."""
    rng = np.random.default_rng(seed)
    sets = {}
    if len(held_out_digits):
        sets["held_out_digits"] = data.to_float(held_out_digits[rng.choice(len(held_out_digits),
                                                                           min(count, len(held_out_digits)),
                                                                           replace=False)])
    try:
        cifar = data.load("cifar10", "test", data_dir)
        chosen = data.to_float(cifar.images[rng.choice(len(cifar), count, replace=False)])
        grey = chosen @ np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R 601 luma
        sets["cifar10_grey"] = np.asarray(jax.image.resize(grey[..., None], (count, 28, 28, 1), "linear",
                                                           antialias=True)).clip(0, 1)
    except data.DataNotFoundError:
        print("CIFAR-10 not found: the cifar10_grey outliers are left out")
    sets["noise"] = rng.random((count, 28, 28, 1)).astype(np.float32)
    sets["inverted"] = 1.0 - inlier_digits
    return sets


def restoration_scores(model, params, clean, observed, mask, sigma, temperature, steps):
    restored, objective = restoration.restore(model, params, observed, mask, sigma, temperature, steps)
    return restored, {"temperature": temperature, "psnr": float(np.mean(metrics.psnr(restored, clean))),
                      "ssim": float(np.mean(metrics.ssim(restored, clean))),
                      "objective_start": float(objective[0]), "objective_end": float(objective[-1])}


def load_data(config, args):
    """MNIST train and test sets (seeded subsets), split into the inlier digits and the rest."""
    train_all = data.subset(data.load("mnist", "train", args.data_dir), config.train_examples, config.seed)
    test_all = data.subset(data.load("mnist", "test", args.data_dir), config.test_examples, config.seed)
    train_in, _ = outliers.split_classes(train_all, config.inlier_digits)
    test_in, test_out = outliers.split_classes(test_all, config.inlier_digits)
    return train_all, test_all, train_in, test_in, test_out


def restoration_problems(test_in, config, rng, pick):
    """Validation images (T is chosen on them) and evaluation images (T is scored on them), disjoint, each
    noisy (denoising) and with the central block removed (inpainting)."""
    chosen = pick.choice(len(test_in), config.validation_images + config.restoration_images, replace=False)
    problems = {}
    for split, index in (("validation", chosen[:config.validation_images]),
                         ("evaluation", chosen[config.validation_images:])):
        clean = data.to_float(test_in.images[index])
        noise_rng = jax.random.fold_in(rng, 70 + len(problems))
        noisy = np.asarray(clean + config.noise_sigma * jax.random.normal(noise_rng, clean.shape))
        block = restoration.central_block_mask((28, 28), config.inpaint_block)
        problems[split] = {"clean": clean, "denoise": (noisy, np.ones_like(block)), "inpaint": (clean * block, block)}
    return problems


def evaluate_prior(variant, model, params, seed_index, shared, config, output):
    """Every score of one trained prior: code uniformity, outlier AUROC per set, uniform decodes, restoration
    (T chosen on the validation images by a sweep widened until its optimum is inside). Figures for the first
    seed only."""
    test_in, inliers, outlier_images, problems = (shared[k] for k in ("test_in", "inliers", "outliers", "problems"))
    figures = seed_index == 0
    scores = {}
    codes = encode_images(model, params, test_in.images)
    scores["code_range"] = [float(codes.min()), float(codes.max())]
    scores["saturated_fraction"] = float(np.mean((codes < 0.01) | (codes > 0.99)))
    scores["uniformity"] = uniformity_report(codes, config.seed)
    if figures:
        shown = np.random.default_rng(config.seed).choice(len(codes), min(config.scatter_codes, len(codes)),
                                                          replace=False)
        plots.coordinate_planes(codes[shown], test_in.labels[shown], PLANES, output.figure(f"codes_{variant}.png"),
                                f"{variant}: {len(shown)} test codes in four coordinate planes of "
                                f"[0, 1]^{config.code_dim}")

    inlier_energy = energies(model, params, inliers)
    outlier_energy = {kind: energies(model, params, images) for kind, images in outlier_images.items()}
    scores["energy_mean"] = {"inliers": float(inlier_energy.mean()),
                             **{k: float(e.mean()) for k, e in outlier_energy.items()}}
    scores["outlier_auroc"] = outliers.auroc_per_set(inlier_energy, outlier_energy)
    uniform_codes = jax.random.uniform(jax.random.fold_in(jax.random.key(config.seed), 90 + seed_index),
                                       (config.uniform_decodes, config.code_dim))
    decoded = decode_pixels(model, params, uniform_codes)
    confidence = class_probabilities(shared["classifier"], shared["classifier_params"], decoded).max(axis=1)
    scores["uniform_decode_confident_fraction"] = float(np.mean(confidence >= 0.9))
    if figures:
        plots.histograms({"inlier digits": inlier_energy, **outlier_energy}, output.figure(f"energies_{variant}.png"),
                         f"{variant}: prior energy |D(E(x)) - x| of inlier digits and outliers", "energy")
        plots.image_grid(decoded[:30], output.figure(f"uniform_decodes_{variant}.png"), ncols=15, scale=0.6,
                         title=f"{variant}: decoded codes drawn uniformly from the cube")

    scores["restoration_T_sweep"], scores["restored_examples"] = {}, {}
    evaluation = problems["evaluation"]
    for task in TASKS:
        observed, mask = problems["validation"][task]
        sweep, best, inside = restoration.sweep_temperature(
            lambda T: restoration_scores(model, params, problems["validation"]["clean"], observed, mask,
                                         config.noise_sigma, T, config.restoration_steps)[1],
            config.temperatures)
        scores["restoration_T_sweep"][task] = sweep
        restored, scores[task] = restoration_scores(model, params, evaluation["clean"], *evaluation[task],
                                                    config.noise_sigma, best["temperature"], config.restoration_steps)
        scores[task]["temperature_inside_sweep"] = inside
        scores["restored_examples"][task] = restored[:8]
    return scores


def headline(scores) -> dict:
    """The numbers averaged over seeds, flat: metric -> value."""
    row = {"test_recon": scores["test_recon"], "confident": scores["uniform_decode_confident_fraction"],
           "saturated": scores["saturated_fraction"]}
    row.update({k: scores["uniformity"][k] for k in UNIFORMITY})
    row.update({f"auroc_{k}": v for k, v in scores["outlier_auroc"].items()})
    for task in TASKS:
        row.update({f"{task}_psnr": scores[task]["psnr"], f"{task}_ssim": scores[task]["ssim"],
                    f"{task}_T": scores[task]["temperature"]})
    return row


def summarize(per_seed: dict) -> dict:
    """variant -> metric -> {mean, std, values} over the seeds (std: population, 0 for one seed)."""
    summary = {}
    for variant in VARIANTS:
        rows = [headline(per_seed[seed][variant]) for seed in per_seed]
        summary[variant] = {m: {"mean": float(np.mean([r[m] for r in rows])),
                                "std": float(np.std([r[m] for r in rows])), "values": [r[m] for r in rows]}
                            for m in rows[0]}
    return summary


def compare(summary, better: str, baseline: str, metrics_: dict) -> list[dict]:
    """Per metric: the paired difference better - baseline over the seeds, signed so that > 0 favours
    `better`, and what it says: 'better' / 'worse' when every seed agrees, 'no consistent difference' when not."""
    rows = []
    for metric, larger_is_better in metrics_.items():
        sign = 1.0 if larger_is_better else -1.0
        gains = sign * (np.asarray(summary[better][metric]["values"]) - np.asarray(summary[baseline][metric]["values"]))
        outcome = "better" if np.all(gains > 0) else "worse" if np.all(gains < 0) else "no consistent difference"
        rows.append({"metric": metric, "gain_mean": float(gains.mean()), "gain_std": float(gains.std()),
                     "seeds_better": int(np.sum(gains > 0)), "seeds": len(gains), "outcome": outcome})
    return rows


def main(argv=None):
    args, config = parse_study_args(study_parser(NAME, __doc__.splitlines()[0], get_config), argv)
    output = StudyOutput(NAME, args, config)
    train_all, test_all, train_in, test_in, test_out = load_data(config, args)
    rng = jax.random.key(config.seed)
    pick = np.random.default_rng(config.seed)
    output.open()
    results = {"dataset": "mnist", "budget": output.budget, "config": config.to_dict(),
               "inlier_digits": list(config.inlier_digits), "train_examples": len(train_in),
               "test_inliers": len(test_in), "test_held_out": len(test_out)}
    x_example = np.zeros((1, 28, 28, 1), np.float32)

    # The judge of decoded codes: a digit classifier on all ten digits.
    classifier = DigitCNN()
    classifier_params, classifier_history = train_model(
        "classifier", classifier.init(jax.random.fold_in(rng, 50), x_example),
        objectives.classifier_objective(classifier), train_all, test_all, config, config.classifier_epochs, args,
        output, cosine_decay=True)
    results["classifier_test_accuracy"] = classifier_history["test"]["accuracy"][-1]
    output.phase("classifier")

    # Shared by every prior: inlier and outlier test images, and the restoration problems.
    inlier_index = pick.choice(len(test_in), min(config.outliers_per_kind, len(test_in)), replace=False)
    inliers = data.to_float(test_in.images[inlier_index])
    shared = {"test_in": test_in, "inliers": inliers, "classifier": classifier, "classifier_params": classifier_params,
              "outliers": outlier_sets(test_out.images, inliers, len(inliers), config.seed, args.data_dir),
              "problems": restoration_problems(test_in, config, rng, pick)}
    evaluation = shared["problems"]["evaluation"]
    results["inlier_test_images"] = len(inliers)
    results["outlier_sets"] = {k: len(v) for k, v in shared["outliers"].items()}
    results["corrupted"] = {}
    for task in TASKS:
        corrupted = evaluation[task][0].clip(0, 1)
        results["corrupted"][task] = {"psnr": float(np.mean(metrics.psnr(corrupted, evaluation["clean"]))),
                                      "ssim": float(np.mean(metrics.ssim(corrupted, evaluation["clean"])))}

    per_seed, examples, histories = {}, {}, {}
    for s, seed in enumerate(config.seeds):
        per_seed[str(seed)] = {}
        for v, (variant, (layer_norm, reconstruction, regularized)) in enumerate(MODELS.items()):
            model = BoundedAE((28, 28, 1), config.code_dim, layer_norm=layer_norm)
            objective = objectives.bounded_ae_objective(model, config.uniformity_weight if regularized else 0.0,
                                                        reconstruction=reconstruction)
            init_rng = jax.random.fold_in(jax.random.key(seed), v)
            params, history = train_model(f"{variant}_seed{seed}", model.init(init_rng, x_example), objective,
                                          train_in, test_in, config.replace(seed=seed), config.epochs, args, output)
            scores = {"history": history, "test_recon": history["test"]["recon"][-1],
                      **evaluate_prior(variant, model, params, s, shared, config, output)}
            if s == 0:
                examples[variant], histories[variant] = scores["restored_examples"], history
            del scores["restored_examples"]
            per_seed[str(seed)][variant] = scores
            print(f"seed {seed} {variant}: SSE {scores['test_recon']:.2f}, KS {scores['uniformity']['ks_mean']:.3f}, "
                  f"AUROC all {scores['outlier_auroc']['all']:.3f}, denoise {scores['denoise']['psnr']:.2f} dB "
                  f"(T={scores['denoise']['temperature']:g}), inpaint {scores['inpaint']['psnr']:.2f} dB "
                  f"(T={scores['inpaint']['temperature']:g})")
        output.phase(f"seed {seed}")
    results["per_seed"] = per_seed
    summary = summarize(per_seed)
    results.update(summary)
    headline_metrics = {**{k: True for k in summary["naive"] if k.startswith("auroc_")},
                        **RESTORATION, **UNIFORMITY, "confident": True}
    results["verdict"] = {f"regularized_vs_{baseline}": compare(summary, "regularized", baseline, headline_metrics)
                          for baseline in ("naive", "layernorm")}

    first = per_seed[str(config.seeds[0])]
    for task in TASKS:
        rows = [evaluation["clean"][:8], evaluation[task][0][:8].clip(0, 1)] + [examples[v][task] for v in VARIANTS]
        plots.image_grid(np.concatenate(rows), output.figure(f"restoration_{task}.png"), ncols=8,
                         row_labels=["clean", "corrupted"] + [f"{v} T={first[v][task]['temperature']:g}"
                                                             for v in VARIANTS],
                         title=f"{task}: clean / corrupted / restored with each prior (seed {config.seeds[0]})")
    temperature_figure(per_seed, output.figure("temperature_sweep.png"))
    plots.loss_curves(histories, ["recon", "uniformity"], output.figure("loss_curves.png"),
                      f"Reconstruction SSE and SW2^2 to the uniform cube (seed {config.seeds[0]})")
    output.finish(results, write_report(results))


def temperature_figure(per_seed, path):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(TASKS), figsize=(5.5 * len(TASKS), 3.6))
    colours = dict(zip(VARIANTS, ("tab:red", "tab:orange", "tab:blue")))
    for ax, task in zip(axes, TASKS):
        for s, seed in enumerate(per_seed):
            for variant in VARIANTS:
                sweep = per_seed[seed][variant]["restoration_T_sweep"][task]
                ax.plot([r["temperature"] for r in sweep], [r["psnr"] for r in sweep], marker=".",
                        color=colours[variant], alpha=0.8, label=variant if s == 0 else None)
        ax.set(xscale="log", xlabel="T", ylabel="validation PSNR (dB)", title=f"{task}: PSNR against T, every seed")
        ax.legend(fontsize=8)
    plots.save_figure(fig, path)


def mean_std(summary, variant, metric, digits=3) -> str:
    m = summary[variant][metric]
    return f"{m['mean']:.{digits}f} ± {m['std']:.{digits}f}"


def verdict_lines(results) -> list[str]:
    labels = {"auroc_held_out_digits": "outlier AUROC on the held-out digits", "auroc_all": "outlier AUROC, all sets",
              "denoise_psnr": "denoising PSNR", "inpaint_psnr": "inpainting PSNR", "denoise_ssim": "denoising SSIM",
              "inpaint_ssim": "inpainting SSIM", "ks_mean": "KS mean (uniform marginals)",
              "sliced_w2_joint": "SW₂² to the cube", "confident": "confident uniform decodes"}
    lines = []
    for key, rows in results["verdict"].items():
        baseline = key.split("_vs_")[1]
        for row in rows:
            if row["metric"] not in labels:
                continue
            lines.append(f"regularized vs {baseline}, {labels[row['metric']]}: **{row['outcome']}** "
                         f"(gain {row['gain_mean']:+.4g} ± {row['gain_std']:.2g}; better on {row['seeds_better']} "
                         f"of {row['seeds']} seeds)")
    return lines


def document_claim(results) -> str:
    """The assignment expects the regularised prior to beat the naive one on outlier AUROC and both restorations."""
    rows = {r["metric"]: r for r in results["verdict"]["regularized_vs_naive"]}
    claims = [m for m in ("auroc_all", "auroc_held_out_digits", "denoise_psnr", "inpaint_psnr") if m in rows]
    held = [m for m in claims if rows[m]["outcome"] == "better"]
    if len(held) == len(claims):
        return (f"The assignment's expectation holds on these numbers: the regularised prior beats the naive one "
                f"on every seed on {', '.join(claims)}.")
    if not held:
        return (f"The assignment's expectation does not hold on these numbers: on none of {', '.join(claims)} does "
                f"the regularised prior beat the naive one on every seed.")
    return (f"The assignment's expectation holds in part: the regularised prior beats the naive one on every seed on "
            f"{', '.join(held)}, not on {', '.join(m for m in claims if m not in held)}.")


def write_report(results) -> str:
    config = results["config"]
    seeds = config["seeds"]
    kinds = [k[len("auroc_"):] for k in results["naive"] if k.startswith("auroc_")]
    rows = [[v, mean_std(results, v, "test_recon", 2), mean_std(results, v, "saturated"),
             mean_std(results, v, "ks_mean"), mean_std(results, v, "sliced_w2_joint", 4),
             mean_std(results, v, "mmd_joint", 4), mean_std(results, v, "occupied_orthants"),
             mean_std(results, v, "confident")] for v in VARIANTS]
    auroc_rows = [[v] + [mean_std(results, v, f"auroc_{k}") for k in kinds] for v in VARIANTS]
    restore_rows = [["corrupted input", "-", f"{results['corrupted']['denoise']['psnr']:.2f}",
                     f"{results['corrupted']['denoise']['ssim']:.3f}", "-",
                     f"{results['corrupted']['inpaint']['psnr']:.2f}",
                     f"{results['corrupted']['inpaint']['ssim']:.3f}"]]
    restore_rows += [[v, "/".join(f"{t:g}" for t in results[v]["denoise_T"]["values"]),
                      mean_std(results, v, "denoise_psnr", 2), mean_std(results, v, "denoise_ssim"),
                      "/".join(f"{t:g}" for t in results[v]["inpaint_T"]["values"]),
                      mean_std(results, v, "inpaint_psnr", 2), mean_std(results, v, "inpaint_ssim")] for v in VARIANTS]
    inside = all(results["per_seed"][s][v][t]["temperature_inside_sweep"]
                 for s in results["per_seed"] for v in VARIANTS for t in TASKS)
    sweep_rows = []
    for v in VARIANTS:
        for task in TASKS:
            for row in results["per_seed"][str(seeds[0])][v]["restoration_T_sweep"][task]:
                sweep_rows.append([v, task, row["temperature"], row["psnr"], row["ssim"]])
    smoke = f"{common.SMOKE_RUN_NOTE}\n\n" if results["budget"] == "quick" else ""
    return f"""# An autoencoder image prior with a bounded latent

{smoke}MNIST, {results['budget']} budget. The autoencoders train on the digits {', '.join(map(str, results['inlier_digits']))}
only ({results['train_examples']:,} training images, {config['epochs']} epochs); every number below is mean ± std over
the seeds {', '.join(map(str, seeds))} (population std; the data, outliers and restoration problems are the same for
every seed, drawn with seed {config['seed']}). Codes in [0, 1]^{config['code_dim']} (sigmoid encoder).
Prior P(I) ∝ exp(−‖D(E(I)) − I‖₂ / T).

- **naive**: the assignment's model: conv encoder, sigmoid, no normalisation, loss ‖D(E(I)) − I‖.
- **layernorm**: a named variant: a LayerNorm before the sigmoid, squared error (this study's earlier model).
- **regularized**: the naive model plus {config['uniformity_weight']:g} × SW₂²(codes, Uniform[0, 1]^d).

## The regulariser

The sliced 2-Wasserstein distance to the uniform cube, SW₂²(P, U) = E_θ W₂²(θ·P, θ·U) over random unit
directions θ. In one dimension W₂² between two samples of equal size n is the mean squared difference of the
sorted values, so for each batch we draw 64 directions and n uniform points, project, sort and compare. By the
Cramér–Wold theorem it vanishes only when every 1-D projection of the code distribution is uniform-cube-like,
i.e. when the codes fill the cube. It is analytical (no critic network), and its gradient moves each code towards
the uniform sample of the same rank along each direction, which pushes clustered codes apart into the empty
regions. Digit classifier (the judge below, trained on all ten digits): {100 * results['classifier_test_accuracy']:.2f}%
test accuracy.

## How the codes fill the cube

Test codes of the inlier digits. Saturated: fraction of code coordinates below 0.01 or above 0.99. KS mean: mean
over dimensions of the Kolmogorov–Smirnov statistic against U[0, 1] (0 = uniform marginals, 1 = a point mass);
SW₂² joint over 500 fixed directions; MMD² to 2,000 uniform points (Gaussian kernel, bandwidth 0.2√d); orthants:
fraction of the 2^d half-cube cells holding a test code. Confident: fraction of decoded uniform codes the classifier
labels with confidence ≥ 0.9.

{markdown_table(["prior", "test SSE", "saturated", "KS mean", "SW₂² joint", "MMD² joint", "orthants", "confident"], rows)}

![naive codes](codes_naive.png)
![layernorm codes](codes_layernorm.png)
![regularised codes](codes_regularized.png)
![naive uniform decodes](uniform_decodes_naive.png)
![layernorm uniform decodes](uniform_decodes_layernorm.png)
![regularised uniform decodes](uniform_decodes_regularized.png)
![loss curves](loss_curves.png)

## Does the prior reject outliers?

AUROC of the energy ‖D(E(x)) − x‖ as a score for "outlier" against {results['inlier_test_images']} inlier
test digits. held_out_digits: test images of the digits the autoencoders never saw (the test with room: they look
like digits); cifar10_grey: CIFAR-10 test images in grey at 28×28; noise: uniform noise; inverted: 1 − inlier digits.

{markdown_table(["prior"] + kinds, auroc_rows)}

![naive energies](energies_naive.png)
![layernorm energies](energies_layernorm.png)
![regularised energies](energies_regularized.png)

## Restoration

Minimising −log P(x|y) = ‖m ⊙ (x − y)‖² / 2s² + ‖D(E(x)) − x‖ / T over the image x (Adam, lr 0.01,
{config['restoration_steps']} steps from x = y, projected onto [0, 1]); s = {config['noise_sigma']:g}. Denoising:
y = x + N(0, s²) (not clipped), m = 1. Inpainting: the central {config['inpaint_block']}×{config['inpaint_block']} block
is removed (y = 0 there, m = 0 there). T is chosen by PSNR on {config['validation_images']} validation images (inlier
test digits) from the sweep {', '.join(f'{t:g}' for t in config['temperatures'])}, widened by 10× while the best T is
at an end of it, and scored on {config['restoration_images']} other images. The chosen T is inside the swept range
{'for every prior, task and seed' if inside else '**not** for every prior, task and seed (see results.json)'}.
T column: the T chosen under each seed.

{markdown_table(["prior", "denoise T", "denoise PSNR", "denoise SSIM", "inpaint T", "inpaint PSNR", "inpaint SSIM"],
                restore_rows)}

![denoising](restoration_denoise.png)
![inpainting](restoration_inpaint.png)
![T sweep](temperature_sweep.png)

## Verdict

Computed from the paired per-seed differences (regularised minus the other prior, signed so that a positive gain
favours the regularised prior): "better" or "worse" only when every seed agrees.

{chr(10).join('- ' + line for line in verdict_lines(results))}

{document_claim(results)}

### The T sweep of seed {seeds[0]} (validation images)

{markdown_table(["prior", "task", "T", "PSNR", "SSIM"], sweep_rows)}
"""


if __name__ == "__main__":
    common.entry_point(main)
