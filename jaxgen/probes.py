"""Linear probes: how linearly separable the classes are in a frozen representation."""
from __future__ import annotations

import warnings

import numpy as np


def _flat(features) -> np.ndarray:
    features = np.asarray(features, np.float32)
    return features.reshape(len(features), -1)


def linear_probe(train_features, train_labels, test_features, test_labels, max_iter: int = 300,
                 l2: float = 1.0) -> tuple[float, object]:
    """Test accuracy of a multinomial logistic regression (L2 strength 1/C = `l2`) fitted on
    standardised frozen training features, for at most `max_iter` L-BFGS steps; (accuracy, fitted
    pipeline)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from sklearn.exceptions import ConvergenceWarning

    probe = make_pipeline(StandardScaler(), LogisticRegression(C=1.0 / l2, max_iter=max_iter))
    with warnings.catch_warnings():  # max_iter is the budget; stopping at it is expected
        warnings.simplefilter("ignore", ConvergenceWarning)
        probe.fit(_flat(train_features), train_labels)
    return float(probe.score(_flat(test_features), test_labels)), probe


def projected_probe(train_features, train_labels, test_features, test_labels) -> dict:
    """A logistic regression on a 2-D PCA projection of the standardised features: the classifier
    whose decision regions can be drawn. Returns the projections, the classifier and its accuracy."""
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    projection = make_pipeline(StandardScaler(), PCA(2, random_state=0)).fit(_flat(train_features))
    train_2d, test_2d = projection.transform(_flat(train_features)), projection.transform(_flat(test_features))
    classifier = LogisticRegression(max_iter=500).fit(train_2d, train_labels)
    return {"test_points": test_2d, "classifier": classifier,
            "accuracy": float(classifier.score(test_2d, test_labels))}
