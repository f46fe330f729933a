"""Matplotlib figures for the report. Every figure has a title and axis labels, saved as PNG."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from aecls.core.plotting import plt, save_figure


def image_rows(rows: Sequence[np.ndarray], row_labels: Sequence[str], path: Path, title: str,
               col_labels: Sequence[str] | None = None, xlabel: str = "test images (columns)") -> Path:
    """A grid: one row per array of (n, 28, 28) images in [0, 1], labelled on the left."""
    n = len(rows[0])
    fig, axes = plt.subplots(len(rows), n, figsize=(1.1 * n + 1.2, 1.2 * len(rows) + 0.6), squeeze=False)
    for r, (imgs, label) in enumerate(zip(rows, row_labels, strict=True)):
        for c in range(n):
            ax = axes[r, c]
            ax.imshow(imgs[c], cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
            if r == 0 and col_labels is not None:
                ax.set_title(col_labels[c], fontsize=7)
    fig.suptitle(title)
    fig.supxlabel(xlabel, fontsize=9)
    return save_figure(fig, path, dpi=90)


def scatter_panels(panels: Sequence[np.ndarray], titles: Sequence[str], labels: np.ndarray,
                   classes: Sequence[str], path: Path, title: str, axis: str) -> Path:
    """2-D embeddings side by side (one panel per model, the same images), coloured by class,
    with one legend of class names."""
    n = len(panels)
    fig, axes = plt.subplots(1, n, figsize=(5.5 * n + 1.5, 5.2), squeeze=False)
    cmap = plt.get_cmap("tab10")
    for ax, points, sub in zip(axes[0], panels, titles, strict=True):
        for k, name in enumerate(classes):
            m = labels == k
            ax.scatter(points[m, 0], points[m, 1], s=4, color=cmap(k), label=name, alpha=0.7)
        ax.set(title=sub, xlabel=f"{axis} 1", ylabel=f"{axis} 2")
    axes[0, -1].legend(markerscale=4, fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.suptitle(title)
    return save_figure(fig, path, dpi=90)
