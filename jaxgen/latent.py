"""Working in a latent space: interpolation, latent arithmetic, class means, and clustering with a
Gaussian mixture."""
from __future__ import annotations

import numpy as np


def interpolate(z_start, z_end, alphas) -> np.ndarray:
    """(len(alphas), D): (1 - alpha) z_start + alpha z_end for each alpha (exact at 0 and 1)."""
    alphas = np.asarray(alphas, dtype=np.float32)[:, None]
    return (1.0 - alphas) * np.asarray(z_start)[None] + alphas * np.asarray(z_end)[None]


def linear_interpolation(z_start, z_end, num_steps: int) -> np.ndarray:
    """(num_steps, D) points from z_start to z_end inclusive, evenly spaced."""
    return interpolate(z_start, z_end, np.linspace(0.0, 1.0, num_steps))


def transfer_class_offset(z_a, z_b, class_mean_b, strengths) -> np.ndarray:
    """(len(strengths), D): z_a + lambda (z_b - mean of b's class). What makes b differ from its
    class (its "style") is added to a; lambda = 0 returns z_a exactly."""
    strengths = np.asarray(strengths, dtype=np.float32)[:, None]
    return np.asarray(z_a)[None] + strengths * (np.asarray(z_b) - np.asarray(class_mean_b))[None]


def move_towards(z_a, z_b, strengths) -> np.ndarray:
    """(len(strengths), D): z_a + alpha (z_b - z_a); alpha = 0 returns z_a exactly."""
    strengths = np.asarray(strengths, dtype=np.float32)[:, None]
    return np.asarray(z_a)[None] + strengths * (np.asarray(z_b) - np.asarray(z_a))[None]


def class_means(latents: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """(num_classes, D): the mean latent of each class (NaN for a class with no examples)."""
    empty = np.full(latents.shape[1:], np.nan, np.float32)
    return np.stack([latents[labels == c].mean(axis=0) if (labels == c).any() else empty
                     for c in range(num_classes)])


def majority_label_map(clusters: np.ndarray, labels: np.ndarray, num_clusters: int) -> np.ndarray:
    """For each cluster, the most frequent true label among its members (-1 if empty)."""
    mapping = np.full(num_clusters, -1, dtype=np.int64)
    for k in range(num_clusters):
        members = labels[clusters == k]
        if len(members):
            mapping[k] = np.bincount(members).argmax()
    return mapping


def gmm_clustering(train_latents, train_labels, test_latents, test_labels, num_components: int = 10,
                   seed: int = 0) -> tuple[dict, object]:
    """Fit a full-covariance Gaussian mixture on training latents, name each component by the
    majority label of its training members, and score that as a classifier on the test set."""
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support
    from sklearn.mixture import GaussianMixture

    gmm = GaussianMixture(num_components, covariance_type="full", random_state=seed, n_init=1, max_iter=200)
    gmm.fit(train_latents)
    mapping = majority_label_map(gmm.predict(train_latents), train_labels, num_components)
    predicted = mapping[gmm.predict(test_latents)]
    precision, recall, f1, _ = precision_recall_fscore_support(test_labels, predicted, average="macro",
                                                               zero_division=0)
    scores = {"accuracy": float(accuracy_score(test_labels, predicted)), "precision_macro": float(precision),
              "recall_macro": float(recall), "f1_macro": float(f1), "component_to_label": mapping.tolist(),
              "labels_covered": int(len(set(mapping.tolist()) - {-1}))}
    return scores, gmm
