"""Figures saved as PNG: loss curves, image grids, 2-D scatters, histograms, GMM ellipses."""
from __future__ import annotations

import textwrap
from typing import Sequence

import matplotlib

matplotlib.use("Agg")  # files only; no display is needed or assumed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Ellipse  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402


def save_figure(fig, path):
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def loss_curves(histories: dict[str, dict], terms: Sequence[str], path, title: str = "") -> None:
    """One panel per loss term; a train (dashed) and test (solid) line per model."""
    fig, axes = plt.subplots(1, len(terms), figsize=(4.2 * len(terms), 3.4), squeeze=False)
    for ax, term in zip(axes[0], terms):
        for i, (name, history) in enumerate(histories.items()):
            color = f"C{i}"
            for split, style in (("train", "--"), ("test", "-")):
                values = history.get(split, {}).get(term)
                if values:
                    ax.plot(np.arange(1, len(values) + 1), values, style, color=color,
                            label=f"{name} {split}")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(term)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    if title:  # wrapped to the figure's width: a one-panel figure is narrower than a long title
        fig.suptitle(textwrap.fill(title, width=int(fig.get_figwidth() * 11)))
    save_figure(fig, path)


def image_grid(images: np.ndarray, path, ncols: int, row_labels: Sequence[str] | None = None,
               col_labels: Sequence[str] | None = None, title: str = "", scale: float = 1.0) -> None:
    """Images (N, H, W, C) in [0, 1], row-major in a grid of `ncols` columns."""
    images = np.clip(np.asarray(images, dtype=np.float32), 0.0, 1.0)
    nrows = int(np.ceil(len(images) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(scale * 1.1 * ncols, scale * 1.1 * nrows + (0.4 if title else 0)),
                             squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
        if i < len(images):
            image = images[i]
            ax.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray", vmin=0, vmax=1)
    if row_labels:
        for ax, label in zip(axes[:, 0], row_labels):
            ax.set_ylabel(label, fontsize=8)
    if col_labels:
        for ax, label in zip(axes[0], col_labels):
            ax.set_title(label, fontsize=8)
    if title:
        fig.suptitle(title)
    save_figure(fig, path)


def scatter_by_class(points: np.ndarray, labels: np.ndarray, path, class_names: Sequence[str] | None = None,
                     title: str = "", ax=None) -> None:
    """2-D points coloured by integer class."""
    own = ax is None
    if own:
        fig, ax = plt.subplots(figsize=(5.5, 5))
    for c in np.unique(labels):
        chosen = labels == c
        name = class_names[c] if class_names is not None else str(c)
        ax.scatter(points[chosen, 0], points[chosen, 1], s=4, alpha=0.7, color=plt.cm.tab10(c % 10), label=name)
    ax.legend(markerscale=3, fontsize=7, loc="best")
    ax.set_title(title)
    if own:
        save_figure(fig, path)


def bar_chart(values: Sequence[float], labels: Sequence[str], path, title: str = "", ylabel: str = "") -> None:
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    ax.bar(range(len(values)), values, color=[plt.cm.tab10(i % 10) for i in range(len(values))])
    ax.set_xticks(range(len(values)), labels)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    save_figure(fig, path)


def gaussian_ellipses(points: np.ndarray, labels: np.ndarray, means: np.ndarray, covariances: np.ndarray,
                      path, title: str = "", component_labels: Sequence[str] | None = None) -> None:
    """Scatter of 2-D points with the 1- and 2-sigma ellipses of 2-D Gaussian components."""
    fig, ax = plt.subplots(figsize=(6, 5.5))
    scatter_by_class(points, labels, None, title=title, ax=ax)
    for k, (mean, cov) in enumerate(zip(means, covariances)):
        eigenvalues, eigenvectors = np.linalg.eigh(cov)
        angle = np.degrees(np.arctan2(eigenvectors[1, -1], eigenvectors[0, -1]))
        for n_sigma in (1, 2):
            width, height = 2 * n_sigma * np.sqrt(np.maximum(eigenvalues[::-1], 0))
            ax.add_patch(Ellipse(mean, width, height, angle=angle, fill=False, lw=1.2,
                                 color="black", alpha=0.8 if n_sigma == 1 else 0.4))
        if component_labels is not None:
            ax.annotate(component_labels[k], mean, fontsize=9, weight="bold", ha="center")
    save_figure(fig, path)


def coordinate_planes(codes: np.ndarray, labels: np.ndarray, planes: Sequence[tuple[int, int]], path,
                      title: str = "") -> None:
    """Scatter of codes in the unit cube, one panel per coordinate plane (i, j), coloured by class."""
    fig, axes = plt.subplots(1, len(planes), figsize=(3.6 * len(planes), 3.6), squeeze=False)
    for ax, (i, j) in zip(axes[0], planes):
        scatter_by_class(codes[:, [i, j]], labels, None, title=f"z{i} vs z{j}", ax=ax)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_aspect("equal")
        if ax is not axes[0][0]:
            ax.get_legend().remove()
    if title:
        fig.suptitle(title)
    save_figure(fig, path)


def histograms(samples: dict[str, np.ndarray], path, title: str = "", xlabel: str = "", bins: int = 50) -> None:
    """Overlaid normalised histograms, one per named sample."""
    fig, ax = plt.subplots(figsize=(6, 3.6))
    edges = np.histogram_bin_edges(np.concatenate(list(samples.values())), bins=bins)
    for name, values in samples.items():
        ax.hist(values, bins=edges, density=True, alpha=0.5, label=name)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    save_figure(fig, path)


def scatter_panels(panels: dict[str, np.ndarray], labels: np.ndarray, path, ncols: int,
                   class_names: Sequence[str] | None = None, title: str = "") -> None:
    """One class-coloured 2-D scatter per named point set (all sharing `labels`); legend in the first."""
    nrows = int(np.ceil(len(panels) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4 * ncols, 3.8 * nrows), squeeze=False)
    for ax, (name, points) in zip(axes.flat, panels.items()):
        scatter_by_class(points, labels, None, class_names, title=name, ax=ax)
        ax.set_xticks([])
        ax.set_yticks([])
        if ax is not axes[0][0]:
            ax.get_legend().remove()
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    save_figure(fig, path)


def decision_regions(panels: dict[str, tuple[np.ndarray, np.ndarray, object]], path,
                     class_names: Sequence[str] | None = None, title: str = "", resolution: int = 300) -> None:
    """Per named panel (points (N, 2), labels, fitted 2-D classifier): the classifier's predicted class
    over the plane as coloured regions, with the points on top."""
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 5), squeeze=False)
    for ax, (name, (points, labels, classifier)) in zip(axes[0], panels.items()):
        low, high = np.percentile(points, 1, axis=0), np.percentile(points, 99, axis=0)
        pad = 0.1 * (high - low)
        xs, ys = np.meshgrid(np.linspace(low[0] - pad[0], high[0] + pad[0], resolution),
                             np.linspace(low[1] - pad[1], high[1] + pad[1], resolution))
        predicted = classifier.predict(np.stack([xs.ravel(), ys.ravel()], 1)).reshape(xs.shape)
        ax.contourf(xs, ys, predicted, levels=np.arange(11) - 0.5, cmap="tab10", alpha=0.25, vmin=-0.5, vmax=9.5)
        scatter_by_class(points, labels, None, class_names, title=name, ax=ax)
        ax.set_xlim(xs.min(), xs.max())
        ax.set_ylim(ys.min(), ys.max())
    if title:
        fig.suptitle(title)
    save_figure(fig, path)


def heatmap_grid(images: np.ndarray, maps: dict[str, np.ndarray], path, title: str = "") -> None:
    """Rows of [image, one heat map per named set (each (N, H, W)) overlaid on it]; one colour
    scale per column."""
    fig, axes = plt.subplots(len(images), 1 + len(maps), figsize=(1.9 * (1 + len(maps)), 1.9 * len(images)),
                             squeeze=False)
    for row, image in enumerate(images):
        axes[row][0].imshow(np.clip(image, 0, 1))
        for col, (name, heat) in enumerate(maps.items(), start=1):
            axes[row][col].imshow(np.clip(image, 0, 1))
            shown = axes[row][col].imshow(heat[row], cmap="inferno", alpha=0.65, vmin=0,
                                          vmax=max(float(heat.max()), 1e-12))
            if row == 0:
                axes[row][col].set_title(name, fontsize=8)
                fig.colorbar(shown, ax=axes[:, col].tolist(), shrink=0.6, pad=0.02)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0][0].set_title("image", fontsize=8)
    if title:
        fig.suptitle(title)
    fig.savefig(path, dpi=110)  # not tight_layout: it fights the shared colour bars
    plt.close(fig)
