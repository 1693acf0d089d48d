"""An autoencoder image prior with a bounded latent on MNIST: naive vs uniformity-regularised.

COMMAND: python -m experiments.image_prior [--quick] [--code-dim 10] [--uniformity-weight 50] [--epochs 10]
RUNTIME: full about 20 min on 2 CPU cores; --quick under 2 min.
RESULT: report.md tables of code uniformity (KS, SW2, orthants), outlier AUROC and restoration PSNR/SSIM for
both priors; the regularised codes fill the cube (codes_*.png), uniform decodes look like digits more often.
"""
from __future__ import annotations

from dataclasses import dataclass

from experiments.configs import StudyConfig, parse_arg, setting


@dataclass(frozen=True)
class Config(StudyConfig):
    epochs: int = setting(10, "training epochs of each autoencoder", low=1, high=10_000)
    classifier_epochs: int = setting(3, "training epochs of the digit classifier (the judge of decoded codes)",
                                     low=1, high=10_000)
    batch_size: int = setting(128, "training batch size", low=1, high=60_000)
    learning_rate: float = setting(1e-3, "Adam learning rate", low=1e-7, high=1.0)
    train_examples: int | None = setting(None, "seeded subset of the 60,000 training images (all: every one)",
                                         low=1, high=60_000)
    test_examples: int | None = setting(None, "seeded subset of the 10,000 test images (all: every one)",
                                        low=1, high=10_000)
    code_dim: int = setting(10, "latent dimension d of the codes in [0, 1]^d", low=8, high=12)
    uniformity_weight: float = setting(50.0, "weight of SW2^2 to the uniform cube in the regularised model",
                                       low=0.0, high=1e6)
    noise_sigma: float = setting(0.2, "denoising: y = x + N(0, s^2), s", low=1e-3, high=10.0)
    inpaint_block: int = setting(10, "inpainting: side of the removed central square (pixels)", low=1, high=28)
    scatter_codes: int = setting(300, "test codes shown in the coordinate-plane figures", low=1, high=10_000)
    outliers_per_kind: int = setting(1000, "images per outlier kind (and inlier digits) in the AUROC test",
                                     low=2, high=10_000)
    uniform_decodes: int = setting(1000, "codes drawn uniformly from the cube, decoded and classified",
                                   low=1, high=100_000)
    validation_images: int = setting(100, "test images on which the temperature T is chosen", low=1, high=5000)
    restoration_images: int = setting(100, "other test images on which restoration is scored", low=1, high=5000)
    restoration_steps: int = setting(200, "Adam steps of each restoration", low=1, high=100_000)

    def check(self) -> None:
        from jaxgen.errors import ConfigError
        test = self.test_examples or 10_000
        if self.validation_images + self.restoration_images > test:
            raise ConfigError(f"--validation-images {self.validation_images} + --restoration-images "
                              f"{self.restoration_images} exceed the {test} test images (--test-examples)")


def get_config(arg: str | None = None) -> Config:
    config = Config()
    if parse_arg(arg) == "quick":
        config = config.replace(epochs=1, classifier_epochs=1, train_examples=2048, test_examples=600,
                                outliers_per_kind=200, uniform_decodes=200, validation_images=16,
                                restoration_images=16, restoration_steps=25)
    return config
