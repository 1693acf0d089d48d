"""Data-parallel scaling: the MNIST conv VAE trained by train.fit on however many devices JAX sees.

    XLA_FLAGS=--xla_force_host_platform_device_count=8 python -m benchmarks.scaling --images 4096

Prints one JSON line: device count, per-epoch train loss and images per second of the last epoch.
benchmarks.run launches it with 1 and with 8 forced CPU devices and compares the two.
"""
from __future__ import annotations

import argparse
import json
import tempfile

import jax
import numpy as np

from benchmarks.workloads import BATCH, LEARNING_RATE, mnist_images, mnist_models
from jaxgen import cpu, data, objectives, train


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=8192)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args(argv)
    images = mnist_images(args.images)
    train_set = data.Dataset(images, np.zeros(len(images), np.int64), (), "mnist")
    model, params, _ = mnist_models()
    config = train.TrainConfig(epochs=args.epochs, batch_size=BATCH, learning_rate=LEARNING_RATE)
    state = train.create_train_state(params, train.adam(config))
    with tempfile.TemporaryDirectory() as directory:
        _, history = train.fit(state, objectives.vae_objective(model), train_set, None, config, directory,
                               desc=f"{jax.device_count()} devices")
    seen = len(images) // BATCH * BATCH
    print(json.dumps({"devices": jax.device_count(), "train_loss": history["train"]["loss"],
                      "images_per_second": seen / history["epoch_seconds"][-1]}))


if __name__ == "__main__":
    cpu.configure()  # the process settings of a jaxgen entry point, before JAX starts
    main()
