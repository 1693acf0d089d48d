"""Per-image scores of inversions: L2 (RMS in [0, 1]), PSNR, LPIPS-VGG at 256 px, cosine distance.

Both images are clipped to [-1, 1] first. L2 = root-mean-square difference of the images mapped to [0, 1]
(PSNR = -20 log10 L2); LPIPS = LPIPS-VGG with both images resized to 256 px; cosine distance = 1 - cos of
the flattened [-1, 1] images.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen import metrics
from jaxgen.stylegan import invert as inversion
from jaxgen.stylegan.perceptual import lpips_features, lpips_from_features

METRIC_LPIPS_RESOLUTION = 256


def rms_difference(images, targets):
    """Per-image L2 score: root-mean-square difference of the clipped images mapped to [0, 1]."""
    return jnp.sqrt(metrics.mse(jnp.clip(images, -1, 1), jnp.clip(targets, -1, 1))) / 2.0


@jax.jit
def _lpips_features(lpips_variables, image):
    return lpips_features(lpips_variables, jnp.clip(image, -1, 1), METRIC_LPIPS_RESOLUTION)


@jax.jit
def _distances(lpips_variables, image, target, target_features):
    l2 = rms_difference(image, target)
    image, target = jnp.clip(image, -1, 1), jnp.clip(target, -1, 1)
    return {"l2": l2, "psnr": -20.0 * jnp.log10(l2),
            "lpips": lpips_from_features(lpips_variables, _lpips_features(lpips_variables, image), target_features),
            "cos": inversion.cosine_distance(image, target)}


class Scorer:
    """Per-image l2, psnr, lpips and cos (see the module docstring) against a fixed set of images.
    VGG at 256 px dominates the cost on CPU, so each reference's features are computed once, and
    images go one at a time so every batch size shares one compiled program."""

    def __init__(self, lpips_variables, references):
        self.lpips_variables = lpips_variables
        self.references = references
        self.features = [_lpips_features(lpips_variables, r[None]) for r in references]

    def __call__(self, images, indices) -> dict[str, np.ndarray]:
        """Distances of images[j] to reference indices[j]."""
        rows = [_distances(self.lpips_variables, image[None], self.references[i][None], self.features[i])
                for image, i in zip(images, indices)]
        return {key: np.concatenate([np.asarray(row[key]) for row in rows]) for key in rows[0]}


def summary_row(distances: dict, final_loss) -> dict:
    row = {}
    for key in ("l2", "lpips", "cos", "psnr"):
        row[f"{key}_mean"] = float(np.mean(distances[key]))
        row[f"{key}_std"] = float(np.std(distances[key]))
    row["final_loss_mean"] = float(np.mean(final_loss))
    row["per_target"] = {key: distances[key] for key in ("l2", "lpips", "cos", "psnr")}
    return row
