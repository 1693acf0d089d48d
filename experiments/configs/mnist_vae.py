"""The MNIST VAE study: three MLP VAEs, a conv VAE and a 2-D-latent VAE, judged by a digit classifier.

COMMAND: python -m experiments.mnist_vae [--quick] [--epochs 25] [--latent-dim 20]
RUNTIME: full about 30 min on 2 CPU cores; --quick about a minute.
RESULT: conv VAE test negative ELBO about 80 nats and a tighter importance-weighted NLL; classifier about 99%;
prior samples and interpolations that read as digits; GMM clustering of the latents (report.md).
"""
from __future__ import annotations

from dataclasses import dataclass

from experiments.configs import StudyConfig, parse_arg, setting


@dataclass(frozen=True)
class Config(StudyConfig):
    epochs: int = setting(25, "training epochs of each VAE", low=1, high=10_000)
    classifier_epochs: int = setting(5, "training epochs of the digit classifier (Adam, cosine decay)",
                                     low=1, high=10_000)
    batch_size: int = setting(128, "training batch size", low=1, high=60_000)
    learning_rate: float = setting(1e-3, "Adam learning rate", low=1e-7, high=1.0)
    latent_dim: int = setting(20, "latent size of the MLP and conv VAEs (the 2-D VAE keeps 2)", low=1, high=1024)
    train_examples: int | None = setting(None, "first N of the 60,000 training images (all: every one)",
                                         low=1, high=60_000)
    test_examples: int | None = setting(None, "first N of the 10,000 test images (all: every one)",
                                        low=1, high=10_000)
    iw_samples: int = setting(1000, "importance samples per image in the conv VAE's log-likelihood",
                              low=1, high=100_000)
    iw_images: int = setting(1000, "seeded test images in the importance-weighted log-likelihood",
                             low=1, high=10_000)
    prior_samples: int = setting(1000, "decoded prior samples, classified and embedded with t-SNE",
                                 low=8, high=100_000)


def get_config(arg: str | None = None) -> Config:
    config = Config()
    if parse_arg(arg) == "quick":
        # 2 x 128 steps of batch 64: digits already recognisable in the samples and interpolations (measured).
        config = config.replace(epochs=2, classifier_epochs=1, batch_size=64, train_examples=8192,
                                test_examples=500, iw_samples=50, iw_images=20, prior_samples=200)
    return config
