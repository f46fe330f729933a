"""Matplotlib without a screen, and the one way aecls saves a figure."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # PNG files only; no display on servers and CI
import matplotlib.pyplot as plt

__all__ = ["plt", "save_figure"]


def save_figure(fig, path: str | Path, dpi: int = 100, rect: tuple = (0, 0, 1, 1)) -> Path:
    """Lay out (the axes within `rect`, figure fractions: room left for a figure legend), write
    `fig` as PNG at `path` (its folder made if needed) and close it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout(rect=rect)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path
