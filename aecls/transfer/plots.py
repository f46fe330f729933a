"""The label-efficiency figure, shared by the sweep and the comparison of sweeps."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def accuracy_plot(curves: list[tuple[dict, str, dict]], path: Path, title: str,
                  scored: str = "test accuracy") -> None:
    """Accuracy (%, `scored`: what the runs were scored on) vs labels (log x): one error-bar line
    (mean ± sample sd) per (stats from `summarise`, method, matplotlib style) in `curves`; methods
    a sweep did not run are left out."""
    from aecls.core.plotting import plt, save_figure

    fig, ax = plt.subplots(figsize=(8, 5))
    for stats, method, style in curves:
        _errorbars(ax, stats, method, style)
    ax.set(xscale="log", xlabel="labelled training images", ylabel=f"{scored} (%)",
           title=f"Label efficiency: {title}")
    ax.grid(alpha=0.3)
    ax.legend()
    save_figure(fig, path)


def panels_plot(stats: dict[str, dict], methods: tuple[str, ...], baselines: tuple[str, ...],
                path: Path, title: str, scored: str = "test accuracy") -> None:
    """Sweeps compared, one panel per method in `methods` that any of them ran (`scored` (%)
    vs labels, log x, one colour per sweep, shared y), each panel with the `baselines` (from the
    first sweep that ran them) in black: a reader compares encoders within a method and every
    method with the baselines. `stats`: NAME -> {(labels, method): (mean, sample sd)}."""
    from aecls.core.plotting import plt, save_figure

    ran = [m for m in methods if any(m == mm for st in stats.values() for _, mm in st)]
    if not ran:
        return
    cols = min(3, len(ran))
    rows = -(-len(ran) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), sharey=True, squeeze=False)
    lines = ("-.", ":", "--")
    for ax, method in zip(axes.flat, ran, strict=False):
        for colour, (name, st) in enumerate(stats.items()):
            _errorbars(ax, st, method, {"label": name, "color": f"C{colour}"})
        for base, ls in zip(baselines, lines, strict=False):
            st = next((st for st in stats.values() if any(m == base for _, m in st)), {})
            _errorbars(ax, st, base, {"label": base, "color": "black", "linestyle": ls, "marker": None})
        ax.set(xscale="log", title=method, xlabel="labelled training images")
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(ran):]:
        ax.axis("off")
    for ax in axes[:, 0]:
        ax.set_ylabel(f"{scored} (%)")
    # One legend for every panel: a sweep or baseline may be drawn in some panels only.
    drawn = {}
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            drawn.setdefault(label, handle)
    labels = [name for name in (*stats, *baselines) if name in drawn]
    fig.legend([drawn[n] for n in labels], labels, loc="lower center", ncol=min(len(labels), 6),
               frameon=False)
    fig.suptitle(f"Label efficiency: {title}")
    legend_rows = -(-len(labels) // 6)
    save_figure(fig, path, rect=(0, (0.15 + 0.3 * legend_rows) / fig.get_figheight(), 1, 1))


def _errorbars(ax, stats: dict, method: str, style: dict) -> None:
    pts = sorted((b, *v) for (b, m), v in stats.items() if m == method)
    if pts:
        b, mean, std = map(np.array, zip(*pts, strict=True))
        ax.errorbar(b, 100 * mean, yerr=100 * std, capsize=3, **{"marker": "o", **style})


PSEUDO_PANELS = (("mask_rate", "confident share (mask rate)"),
                 ("pseudo_acc", "accuracy of confident pseudo-labels"),
                 ("scored_acc", "accuracy of the scored (EMA) weights"))


def pseudo_label_plot(curves: list[dict], path: Path, title: str) -> None:
    """FixMatch's diagnostic vs optimiser steps, measured on validation images: one panel per
    quantity in PSEUDO_PANELS (the trained weights' accuracy dashed in the last), one line per
    (method, labels, seed) run: FixMatch alone and FixMatch started from the graph pseudo-labels
    (pseudo_fixmatch). A falling pseudo-label accuracy with a rising mask rate is drift."""
    from aecls.core.plotting import plt, save_figure

    runs: dict[tuple[str, int, int], list[dict]] = {}
    for c in curves:
        runs.setdefault((c["method"], int(c["labels"]), int(c["seed"])), []).append(c)
    fig, axes = plt.subplots(1, len(PSEUDO_PANELS), figsize=(15, 4.5))
    for i, ((method, labels, seed), points) in enumerate(sorted(runs.items())):
        steps = [int(p["step"]) for p in points]
        for ax, (key, _) in zip(axes, PSEUDO_PANELS, strict=True):
            values = [100 * float(p.get(key, p["acc"]) or np.nan) for p in points]
            ax.plot(steps, values, color=f"C{i % 10}", label=f"{method}, {labels} labels, seed {seed}")
        axes[-1].plot(steps, [100 * float(p["acc"]) for p in points], color=f"C{i % 10}", linestyle="--")
    for ax, (_, name) in zip(axes, PSEUDO_PANELS, strict=True):
        ax.set(xlabel="optimiser step", ylabel="%", title=name)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"FixMatch pseudo-labels on validation images: {title} (dashed: trained weights)")
    save_figure(fig, path)


def rounds_plot(curves: list[dict], path: Path, title: str) -> None:
    """Label propagation in rounds, per round: how many of the propagated labels of the images
    outside the subset are right (a diagnostic; dashed: of the images the round draws from, where
    it keeps a share) and the network's validation accuracy (tuned on the subset where the run
    tunes; dashed: as the round trained it); a line per (labels, seed) run."""
    from aecls.core.plotting import plt, save_figure

    runs: dict[tuple[int, int], list[dict]] = {}
    for c in curves:
        runs.setdefault((int(c["labels"]), int(c["seed"])), []).append(c)
    # per panel: the solid line's column, the dashed one's (drawn where a run's differ), the titles
    panels = (("pseudo_label_acc", "kept_label_acc", "propagated labels right\n(other training images",
               "; dashed: those drawn from)", ")"),
              ("val_acc", "trained_val_acc", "network, validation accuracy", "\n(dashed: untuned)", ""))
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, (key, other_key, name, with_dashed, without) in zip(axes, panels, strict=True):
        dashed = False
        for i, ((labels, seed), points) in enumerate(sorted(runs.items())):
            x = [int(p["round"]) for p in points]
            ax.plot(x, [100 * float(p[key]) for p in points], "o-", color=f"C{i % 10}",
                    label=f"{labels} labels, seed {seed}")
            other = [p.get(other_key) for p in points]  # older rows have no such column
            if all(o not in (None, "") for o in other) and [float(o) for o in other] != [
                    float(p[key]) for p in points]:  # a run that kept a share / tuned
                dashed = True
                ax.plot(x, [100 * float(o) for o in other], "--", color=f"C{i % 10}")
        ax.set(xlabel="round", ylabel="%", title=name + (with_dashed if dashed else without))
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"Label propagation in rounds: {title}")
    save_figure(fig, path)
