"""StyleGAN2 inversion in z, w and w+, an MSE against a perceptual loss, and w+ layer crossover.

COMMAND: python -m experiments.stylegan_inversion --weights ffhq [--targets FILES] [--iterations 1000]
         python -m experiments.stylegan_inversion --self-test [--quick]   (no weights: a seeded 32 px generator)
RUNTIME: --weights ffhq (1024 px) about an hour on one GPU for the 16 sample faces; --self-test a few minutes on
         2 CPU cores, --self-test --quick under a minute or two.
RESULT: Table 1 (z, w, w+ with MSE), Table 2 (MSE against MSE + LPIPS + cosine), Table 3 (w+ crossover at layer k)
in report.md, reconstructions and crossover panels; --self-test checks recovery orders w+ >= w >= z.

The generator (--weights, --weights-sha256 or --self-test), the targets (--targets) and the crossover panels'
zoom (--crop-box) are flags of the study, not config fields: they say what is inverted, not how.
"""
from __future__ import annotations

from dataclasses import dataclass

from experiments.configs import StudyConfig, parse_arg, setting

ALIGN_MODES = ("auto", "on", "off")  # jaxgen.stylegan.targets.ALIGN_MODES (this module imports no JAX)
RECIPES = ("plain", "official", "rosinality")  # plain, or a name of jaxgen.stylegan.invert.RECIPES
SELF_TEST_LPIPS_RESOLUTION = 48  # --lpips-resolution with --self-test unless given (see the study's report)


@dataclass(frozen=True)
class Config(StudyConfig):
    iterations: int = setting(1000, "Adam iterations of every inversion", low=1, high=1_000_000)
    steps_per_call: int = setting(50, "iterations per compiled call (the progress bar moves between calls); "
                                      "the largest divisor of --iterations not above it", low=1, high=1_000_000)
    learning_rate: float = setting(0.01, "Adam learning rate of every space", low=1e-7, high=10.0)
    batch_size: int = setting(8, "targets inverted together by one compiled program (the last chunk padded)",
                              low=1, high=4096)
    lpips_weight: float = setting(1.0, "w1 of the custom loss MSE + w1 LPIPS + w2 cosine distance", low=0.0,
                                  high=1e6)
    cos_weight: float = setting(1.0, "w2 of the custom loss", low=0.0, high=1e6)
    lpips_resolution: int = setting(256, f"LPIPS resolution inside the custom loss ({SELF_TEST_LPIPS_RESOLUTION} "
                                         "with --self-test unless given); reported LPIPS is always at 256 px",
                                    low=32, high=2048)
    table2_targets: int = setting(5, "first targets also inverted with the custom loss (Table 2)", low=1,
                                  high=100_000)
    crossover_pairs: int = setting(5, "w+ crossover pairs (target i, target i+1) of Table 3", low=1, high=100_000)
    crossover_k: int = setting(0, "content layers of a crossover: rows 1..k from the content latent (0: by the "
                                  "generator's resolution, 9 of 18 at 1024 px, 3 of 8 at 32 px)", low=0, high=64)
    align: str = setting("auto", "FFHQ face alignment of --targets (auto: all but squares at the generator's "
                                 "resolution; needs dlib)", choices=ALIGN_MODES)
    recipe: str = setting("plain", "besides the plain z / w / w+ runs, invert every target as a published "
                                   "projector does (official: NVIDIA's stylegan2-ada-pytorch, w + noise maps; "
                                   "rosinality: w+ + noise maps); results.json 'recipe'", choices=RECIPES)
    self_test_targets: int = setting(8, "targets the --self-test generator makes from known w+ latents (without "
                                        "--targets)", low=1, high=10_000)


def get_config(arg: str | None = None) -> Config:
    config = Config()
    if parse_arg(arg) == "quick":
        # The whole code path in a minute or two on 2 CPU cores; 10 iterations recover little (a smoke run).
        config = config.replace(iterations=10, steps_per_call=10, self_test_targets=5)
    return config
