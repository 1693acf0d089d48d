"""The 2-D DDPM study on the Datasaurus dino.

COMMAND: python -m experiments.dino_diffusion [--quick] [--fourier-scale 1.0] [--epochs 400]
RUNTIME: full about a minute on 2 CPU cores; --quick about 20 s.
RESULT: samples.png shows three dinos; MMD² orders fourier < linear_time < no_time (results.json, report.md).
"""
from __future__ import annotations

from dataclasses import dataclass

from experiments.configs import StudyConfig, parse_arg, setting


@dataclass(frozen=True)
class Config(StudyConfig):
    epochs: int = setting(400, "training epochs of each denoiser", low=1, high=100_000)
    steps_per_epoch: int = setting(50, "Adam steps per epoch", low=1, high=100_000)
    batch_size: int = setting(256, "points per step, drawn with replacement, fresh t and noise each step "
                                   "(split over the 2 CPU devices, so even)", low=2, high=65_536)
    learning_rate: float = setting(1e-3, "Adam learning rate", low=1e-7, high=1.0)
    grad_clip_norm: float = setting(1.0, "global-norm gradient clipping", low=1e-6, high=1e6)
    eval_repeats: int = setting(10, "the fixed test set holds the points x this many (x0, t, eps) triples",
                                low=1, high=1000)
    num_samples: int = setting(1000, "points sampled from each trained model", low=10, high=1_000_000)
    fourier_scale: float = setting(1.0, "standard deviation of the fixed Gaussian frequency matrices B",
                                   low=1e-3, high=1e3)

    def check(self) -> None:
        from jaxgen.errors import ConfigError
        if self.batch_size % 2:
            raise ConfigError(f"--batch-size {self.batch_size}: must be even (the batch is split over 2 CPU devices)")


def get_config(arg: str | None = None) -> Config:
    config = Config()
    if parse_arg(arg) == "quick":
        config = config.replace(epochs=10, steps_per_epoch=20)
    return config
