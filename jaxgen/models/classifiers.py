"""Small image classifiers used as pretrained judges of generated samples."""
import flax.linen as nn
import jax
import numpy as np


class DigitCNN(nn.Module):
    """Conv32 -> pool -> Conv64 -> pool -> FC128 -> logits; about 99% on MNIST after a few epochs."""
    num_classes: int = 10

    @nn.compact
    def __call__(self, x):
        h = nn.max_pool(nn.relu(nn.Conv(32, (3, 3))(x)), (2, 2), (2, 2))
        h = nn.max_pool(nn.relu(nn.Conv(64, (3, 3))(h)), (2, 2), (2, 2))
        h = nn.relu(nn.Dense(128)(h.reshape(h.shape[0], -1)))
        return nn.Dense(self.num_classes)(h)


def class_probabilities(model, params, images, batch_size: int = 500) -> np.ndarray:
    """(N, classes) softmax outputs for float images in [0, 1]."""
    from jaxgen.train import batched_apply

    return batched_apply(lambda batch, _: jax.nn.softmax(model.apply(params, batch["image"])), {"image": images},
                         batch_size)
