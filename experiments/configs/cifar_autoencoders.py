"""The CIFAR-10 representation study: AE, denoising AEs, VAE and masked conv AEs, compared.

COMMAND: python -m experiments.cifar_autoencoders [--quick] [--epochs 9] [--latent-dim 2048]
RUNTIME: full about 90 min on 2 CPU cores (10 models on all 50,000 training images); --quick about a minute.
RESULT: report.md tables of clean / noisy reconstruction (MSE, PSNR, SSIM) per model and linear-probe
accuracy of the frozen codes (AE about 46% at latent 2048); reconstruction, t-SNE, occlusion and VAE figures.
"""
from __future__ import annotations

from dataclasses import dataclass

from experiments.configs import StudyConfig, parse_arg, setting
from jaxgen.errors import ConfigError

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


@dataclass(frozen=True)
class Config(StudyConfig):
    epochs: int = setting(9, "training epochs of each model", low=1, high=10_000)
    batch_size: int = setting(128, "training batch size", low=1, high=50_000)
    learning_rate: float = setting(2e-3, "Adam learning rate (cosine decay to 0)", low=1e-7, high=1.0)
    latent_dim: int = setting(2048, "numbers in the code: an 8x8 map of latent-dim/64 channels "
                                    "(a multiple of 64)", low=64, high=65_536)
    reference_latent_dim: int = setting(512, "code size of the extra AE compared with the public reference "
                                             "numbers (0 or --latent-dim: no extra AE)", low=0, high=65_536)
    channels: tuple[int, ...] = setting((32, 64), "widths of the two stride-2 conv stages", low=1, high=4096)
    mask_patch: int = setting(2, "side of a masked patch on the 16x16 first-stage feature map", low=1, high=16)
    embedding_noise: float = setting(0.3, "sigma of the noisy inputs in the t-SNE / PCA figure", low=0.0, high=10.0)
    arithmetic: str = setting("dog,cat,bird", "three CIFAR-10 class names A,B,C of the latent arithmetic A - B + C")
    train_examples: int | None = setting(None, "seeded subset of the 50,000 training images (all: every one)",
                                         low=1, high=50_000)
    test_examples: int | None = setting(None, "seeded subset of the 10,000 test images (all: every one)",
                                        low=1, high=10_000)
    curve_examples: int = setting(2000, "test images behind the per-epoch test loss (the tables use them all)",
                                  low=1, high=10_000)
    embedded_points: int = setting(1000, "test images in the t-SNE / PCA plots", low=10, high=10_000)
    occluded_images: int = setting(4, "test images in the occlusion heat maps", low=1, high=100)
    probe_iterations: int = setting(150, "L-BFGS iterations of each linear probe", low=1, high=100_000)

    def check(self) -> None:
        if self.latent_dim % 64:
            raise ConfigError(f"--latent-dim {self.latent_dim}: must be a multiple of 64 (an 8x8 code map)")
        if self.reference_latent_dim % 64:
            raise ConfigError(f"--reference-latent-dim {self.reference_latent_dim}: must be 0 or a multiple of 64")
        if len(self.channels) != 2:
            raise ConfigError(f"--channels {','.join(map(str, self.channels))}: give two widths, one per "
                              "stride-2 stage")
        names = [n.strip() for n in self.arithmetic.split(",")]
        if len(names) != 3 or any(n not in CIFAR10_CLASSES for n in names):
            raise ConfigError(f"--arithmetic {self.arithmetic}: give three class names A,B,C from "
                              f"{', '.join(CIFAR10_CLASSES)}")


def get_config(arg: str | None = None) -> Config:
    config = Config()
    if parse_arg(arg) == "quick":
        config = config.replace(epochs=1, batch_size=32, train_examples=256, test_examples=256, curve_examples=128,
                                embedded_points=100, occluded_images=1, probe_iterations=50)
    return config
