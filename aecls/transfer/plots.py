"""The label-efficiency figure, shared by the sweep and the comparison of sweeps."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def accuracy_plot(curves: list[tuple[dict, str, dict]], path: Path, title: str) -> None:
    """Test accuracy (%) vs labels (log x): one error-bar line per (stats from `summarise`,
    method, matplotlib style) in `curves`; methods a sweep did not run are left out."""
    from aecls.plotting import plt, save_figure

    fig, ax = plt.subplots(figsize=(8, 5))
    for stats, method, style in curves:
        pts = sorted((b, *v) for (b, m), v in stats.items() if m == method)
        if pts:
            b, mean, std = map(np.array, zip(*pts, strict=True))
            ax.errorbar(b, 100 * mean, yerr=100 * std, marker="o", capsize=3, **style)
    ax.set(xscale="log", xlabel="labelled training images", ylabel="test accuracy (%)",
           title=f"Label efficiency: {title}")
    ax.grid(alpha=0.3)
    ax.legend()
    save_figure(fig, path)
