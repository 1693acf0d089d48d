"""An autoencoder image prior with a bounded latent on MNIST: the assignment's naive model, a LayerNorm
variant and the uniformity-regularised model, over several seeds.

COMMAND: python -m experiments.image_prior [--quick] [--seeds 0,1,2] [--inlier-digits 0,1,2,3,4] [--code-dim 10]
         [--uniformity-weight 5] [--epochs 10]
RUNTIME: full (3 seeds x 3 autoencoders) 39 min on 2 CPU cores shared with other jobs; --quick about 2 min of CPU.
RESULT: report.md: code uniformity (KS, SW2, orthants), outlier AUROC per outlier set (digits 5-9 held out of
training, CIFAR-10 grey, noise, inverted digits), restoration PSNR/SSIM with T chosen on validation images, each
mean ± std over the seeds, and a verdict computed from those numbers; the naive codes collapse into one corner
(codes_naive.png) while the regularised ones fill the cube.
"""
from __future__ import annotations

from dataclasses import dataclass

from experiments.configs import StudyConfig, parse_arg, setting
from jaxgen.errors import ConfigError


@dataclass(frozen=True)
class Config(StudyConfig):
    epochs: int = setting(6, "training epochs of each autoencoder", low=1, high=10_000)
    classifier_epochs: int = setting(2, "training epochs of the digit classifier (the judge of decoded codes)",
                                     low=1, high=10_000)
    batch_size: int = setting(128, "training batch size", low=1, high=60_000)
    learning_rate: float = setting(1e-3, "Adam learning rate", low=1e-7, high=1.0)
    train_examples: int | None = setting(None, "seeded subset of the 60,000 training images (all: every one)",
                                         low=1, high=60_000)
    test_examples: int | None = setting(None, "seeded subset of the 10,000 test images (all: every one)",
                                        low=1, high=10_000)
    code_dim: int = setting(10, "latent dimension d of the codes in [0, 1]^d", low=8, high=12)
    uniformity_weight: float = setting(5.0, "weight of SW2^2 to the uniform cube in the regularised model (its "
                                            "reconstruction term is the norm |D(E(x)) - x|, whose gradient is "
                                            "~1/7 of the squared error's at convergence: 5 here is ~35 there)",
                                       low=0.0, high=1e6)
    seeds: tuple[int, ...] = setting((0, 1, 2), "seeds of the autoencoders (initialisation, batch order, "
                                                "regulariser draws); every number is reported as mean ± std over "
                                                "them", low=0, high=2**31 - 1)
    inlier_digits: tuple[int, ...] = setting((0, 1, 2, 3, 4), "digits the autoencoders train and restore on; the "
                                                              "other digits are the held-out outlier set",
                                             low=0, high=9)
    temperatures: tuple[float, ...] = setting((1e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 1.0, 10.0, 100.0),
                                              "restoration temperatures T swept on the validation images (widened "
                                              "by 10x while the best is at an end, up to 4 times)",
                                              low=1e-8, high=1e8)
    noise_sigma: float = setting(0.2, "denoising: y = x + N(0, s^2), s", low=1e-3, high=10.0)
    inpaint_block: int = setting(10, "inpainting: side of the removed central square (pixels)", low=1, high=28)
    scatter_codes: int = setting(300, "test codes shown in the coordinate-plane figures", low=1, high=10_000)
    outliers_per_kind: int = setting(1000, "images per outlier kind (and inlier digits) in the AUROC test",
                                     low=2, high=10_000)
    uniform_decodes: int = setting(1000, "codes drawn uniformly from the cube, decoded and classified",
                                   low=1, high=100_000)
    validation_images: int = setting(50, "test images on which the temperature T is chosen", low=1, high=5000)
    restoration_images: int = setting(100, "other test images on which restoration is scored", low=1, high=5000)
    restoration_steps: int = setting(150, "Adam steps of each restoration", low=1, high=100_000)

    def check(self) -> None:
        test = self.test_examples or 10_000
        if self.validation_images + self.restoration_images > test // 2:
            raise ConfigError(f"--validation-images {self.validation_images} + --restoration-images "
                              f"{self.restoration_images} exceed half the {test} test images (--test-examples), "
                              "about what the inlier digits leave")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"--seeds {','.join(map(str, self.seeds))}: give distinct seeds, e.g. 0,1,2")
        if not self.inlier_digits or len(set(self.inlier_digits)) != len(self.inlier_digits):
            raise ConfigError("--inlier-digits: give distinct digits, e.g. 0,1,2,3,4")
        if len(self.temperatures) < 3:
            raise ConfigError("--temperatures: give at least 3 values, so that an optimum can lie inside")


def get_config(arg: str | None = None) -> Config:
    config = Config()
    if parse_arg(arg) == "quick":
        config = config.replace(epochs=1, classifier_epochs=1, train_examples=2048, test_examples=600,
                                outliers_per_kind=200, uniform_decodes=200, validation_images=16,
                                restoration_images=16, restoration_steps=25, seeds=(0, 1),
                                temperatures=(1e-3, 0.01, 0.1, 1.0, 10.0))
    return config
