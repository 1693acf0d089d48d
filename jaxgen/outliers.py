"""A score as an outlier detector: held-out classes as outliers, and the AUROC per outlier set.

A prior that separates MNIST digits from noise or from inverted digits proves little: those are far
from any digit, and every prior tested scores AUROC 1.0 on them (no room to tell priors apart). Training
on some classes and scoring the others (digits 0-4 in, 5-9 out) asks whether the prior rejects images
that are close to the training data but not of it.
"""
from __future__ import annotations

import dataclasses

import numpy as np
from sklearn.metrics import roc_auc_score


def split_classes(dataset, inlier_classes):
    """(inliers, outliers): the examples of `dataset` whose label is in `inlier_classes`, and the rest."""
    keep = np.isin(dataset.labels, np.asarray(inlier_classes))
    if not keep.any():
        raise ValueError(f"no example has a label in {tuple(inlier_classes)}")
    return (dataclasses.replace(dataset, images=dataset.images[keep], labels=dataset.labels[keep]),
            dataclasses.replace(dataset, images=dataset.images[~keep], labels=dataset.labels[~keep]))


def auroc(inlier_scores, outlier_scores) -> float:
    """Area under the ROC curve of `score > threshold` as the test "is an outlier" (1: every outlier
    scores above every inlier, 0.5: chance)."""
    inlier_scores, outlier_scores = np.asarray(inlier_scores), np.asarray(outlier_scores)
    labels = np.r_[np.zeros(len(inlier_scores)), np.ones(len(outlier_scores))]
    return float(roc_auc_score(labels, np.r_[inlier_scores, outlier_scores]))


def auroc_per_set(inlier_scores, outlier_scores: dict) -> dict:
    """{name: AUROC} for each outlier set, and "all" for their union."""
    result = {name: auroc(inlier_scores, scores) for name, scores in outlier_scores.items()}
    result["all"] = auroc(inlier_scores, np.concatenate(list(outlier_scores.values())))
    return result
