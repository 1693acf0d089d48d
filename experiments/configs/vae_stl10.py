"""The flagship study: a conv VAE on STL-10 (96x96), latent interpolation and style transfer by latent arithmetic.

COMMAND: python -m experiments.vae_stl10 [--dataset stl10|cifar10|mnist|stl10_first37] [--quick] [--epochs 50]
RUNTIME: full on STL-10's 5,000 labelled images some hours on 2 CPU cores (CIFAR-10 about 55 min);
         --quick about a minute.
RESULT: test negative ELBO, PSNR and SSIM (report.md); reconstructions, prior samples, interpolation and
style-transfer panels; the exported model in OUT/models/vae for experiments.latent_arithmetic.
"""
from __future__ import annotations

from dataclasses import dataclass

from experiments.configs import StudyConfig, parse_arg, setting
from jaxgen.errors import ConfigError

DATASETS = ("stl10", "stl10_first37", "cifar10", "mnist")


@dataclass(frozen=True)
class Config(StudyConfig):
    dataset: str = setting("stl10", "stl10, stl10_first37 (37 real unlabelled STL-10 images; train = test), "
                                    "cifar10 or mnist, each at its own resolution", choices=DATASETS)
    unlabeled: bool = setting(False, "STL-10 only: add the 100,000 unlabelled images to the training set")
    epochs: int = setting(50, "training epochs", low=1, high=100_000)
    batch_size: int = setting(128, "training batch size (lowered to fit a data set smaller than one batch)",
                              low=1, high=100_000)
    learning_rate: float = setting(1e-3, "Adam learning rate", low=1e-7, high=1.0)
    latent_dim: int = setting(128, "latent dimension of the VAE", low=1, high=8192)
    channels: tuple[int, ...] | None = setting(
        None, "conv widths, one stride-2 stage each (none: by resolution, 96px 32,64,128,256; 32px 32,64,128; "
              "28px 32,64)", low=1, high=4096)
    recon: str = setting("bce", "reconstruction term", choices=("bce", "mse"))
    beta: float = setting(1.0, "KL weight (1: the ELBO)", low=0.0, high=1e6)
    kl_warmup_epochs: float = setting(0.0, "ramp the KL weight from 0 to beta over this many epochs (0: off)",
                                      low=0.0, high=100_000)
    train_examples: int | None = setting(None, "first N training images (all: the whole split)", low=1,
                                         high=10_000_000)
    test_examples: int | None = setting(None, "first N test images (all: the whole split)", low=1, high=10_000_000)
    interpolation_pairs: tuple[int, ...] | None = setting(
        None, "test indices I,J,K,L,... taken in pairs for the interpolations (none: seeded, different classes)",
        low=0, high=10_000_000)
    style_pairs: tuple[int, ...] | None = setting(
        None, "test indices A,B,... taken in pairs for style transfer (none: seeded, different classes)",
        low=0, high=10_000_000)

    def check(self) -> None:
        if self.unlabeled and self.dataset != "stl10":
            raise ConfigError(f"--unlabeled adds STL-10's unlabelled split; it needs --dataset stl10, "
                              f"not {self.dataset}")
        for name in ("interpolation_pairs", "style_pairs"):
            value = getattr(self, name)
            if value is not None and len(value) % 2:
                raise ConfigError(f"--{name.replace('_', '-')} {','.join(map(str, value))}: give an even number "
                                  "of test indices, taken in pairs")


def get_config(arg: str | None = None) -> Config:
    config = Config()
    if parse_arg(arg) == "quick":
        config = config.replace(epochs=2, batch_size=32, train_examples=512, test_examples=256)
    return config
