"""A tiny, fixed training run shared by the train-loop tests; run as a script it prints its result
as JSON so a test can compare runs on different device counts (XLA_FLAGS in a subprocess)."""
import json
import sys

import jax
import numpy as np

from jaxgen import data, objectives, train
from jaxgen.models.autoencoders import MLPVAE

MODEL = MLPVAE((32,), 4, (8, 8, 1))


def tiny_dataset(n=256, seed=0):
    rng = np.random.default_rng(seed)
    images = (rng.random((n, 8, 8, 1)) * rng.random((n, 1, 1, 1)) * 255).astype(np.uint8)
    return data.Dataset(images, rng.integers(0, 10, n), (), "synthetic")


def run(checkpoint_dir, epochs, resume=False, overwrite=False, objective=None, batch_size=64, after_epoch=None):
    config = train.TrainConfig(epochs=epochs, batch_size=batch_size, learning_rate=3e-3, seed=1,
                               eval_batch_size=64, steps_per_call=2)
    params = MODEL.init(jax.random.key(0), np.zeros((1, 8, 8, 1), np.float32), jax.random.key(0))
    state = train.create_train_state(params, train.adam(config))
    return train.fit(state, objective or objectives.vae_objective(MODEL), tiny_dataset(), tiny_dataset(128, 1),
                     config, checkpoint_dir, resume=resume, overwrite=overwrite, desc="tiny",
                     after_epoch=after_epoch)


if __name__ == "__main__":
    state, history = run(sys.argv[1], epochs=2)
    print(json.dumps({"devices": jax.device_count(), "history": history,
                      "param_sum": float(sum(np.abs(np.asarray(p)).sum() for p in jax.tree.leaves(state.params)))}))
