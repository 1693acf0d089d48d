"""The 2-D DDPM study on the Datasaurus Dozen (the dino by default).

COMMAND: python -m experiments.dino_diffusion [--quick] [--shape NAME|all] [--T 50] [--schedule linear|cosine]
         [--beta-min 1e-4] [--beta-max 2e-2] [--schedule-sweep] [--fourier-scale 1.0] [--epochs 400]
RUNTIME: full, one shape about a minute on 2 CPU cores; --shape all (13 shapes x 3 denoisers) 7 min and
         --schedule-sweep (10 Fourier models) 5 min on 2 cores shared with other jobs; --quick under a minute.
RESULT: samples.png shows each shape's data and three denoisers' samples; MMD² and Chamfer to a held-out half
of the data, next to the floor of the other half (results.json, report.md); with --schedule-sweep, a table
and schedule_sweep*.png of sample distance against T and the beta range.
"""
from __future__ import annotations

from dataclasses import dataclass

from experiments.configs import StudyConfig, parse_arg, setting
from jaxgen.errors import ConfigError

# The 13 sets of the Datasaurus Dozen (Matejka & Fitzmaurice 2017), each 142 points.
SHAPES = ("dino", "away", "h_lines", "v_lines", "x_shape", "star", "high_lines", "dots", "circle", "bullseye",
          "slant_up", "slant_down", "wide_lines")


@dataclass(frozen=True)
class Config(StudyConfig):
    epochs: int = setting(400, "training epochs of each denoiser", low=1, high=100_000)
    steps_per_epoch: int = setting(50, "Adam steps per epoch", low=1, high=100_000)
    batch_size: int = setting(256, "points per step, drawn with replacement, fresh t and noise each step "
                                   "(split over the 2 CPU devices, so even)", low=2, high=65_536)
    checkpoint_every: int = setting(100, "epochs per compiled call of the training loop, with a checkpoint after "
                                         "each (--resume continues from the last)", low=1, high=100_000)
    learning_rate: float = setting(1e-3, "Adam learning rate", low=1e-7, high=1.0)
    grad_clip_norm: float = setting(1.0, "global-norm gradient clipping", low=1e-6, high=1e6)
    eval_repeats: int = setting(10, "the fixed test set holds the points x this many (x0, t, eps) triples",
                                low=1, high=1000)
    num_samples: int = setting(2130, "points sampled from each trained model (scored in chunks of 71, the size of "
                                     "the held-out half of the data)", low=142, high=1_000_000)
    shape: str = setting("dino", "Datasaurus Dozen set to model, or all 13", choices=SHAPES + ("all",))
    T: int = setting(50, "number of diffusion steps (schedule length and sampler steps)", low=2, high=10_000)
    schedule: str = setting("linear", "noise schedule: beta linear from --beta-min to --beta-max, or cosine "
                                      "(Nichol & Dhariwal; ignores the beta range)", choices=("linear", "cosine"))
    beta_min: float = setting(1e-4, "beta at t = 1 of the linear schedule", low=1e-8, high=0.999)
    beta_max: float = setting(2e-2, "beta at t = T of the linear schedule", low=1e-8, high=0.999)
    schedule_sweep: bool = setting(False, "instead of the three denoisers: train the Fourier model under "
                                          "T in {10, 25, 50, 100, 200}, five beta ranges and the cosine schedule, "
                                          "and report sample distances per setting")
    fourier_scale: float = setting(1.0, "standard deviation of the fixed Gaussian frequency matrices B",
                                   low=1e-3, high=1e3)

    def check(self) -> None:
        if self.batch_size % 2:
            raise ConfigError(f"--batch-size {self.batch_size}: must be even (the batch is split over 2 CPU devices)")
        if self.beta_min > self.beta_max:
            raise ConfigError(f"--beta-min {self.beta_min:g} is above --beta-max {self.beta_max:g}: swap them")
        if self.schedule_sweep and self.shape == "all":
            raise ConfigError("--schedule-sweep runs on one shape: give --shape NAME (default dino), not all")


def get_config(arg: str | None = None) -> Config:
    config = Config()
    if parse_arg(arg) == "quick":
        config = config.replace(epochs=10, steps_per_epoch=20, num_samples=284, checkpoint_every=5)
    return config
