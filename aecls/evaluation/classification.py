"""A classifier's test run, written out: per-class report, confusion matrix PNG, predictions CSV."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from sklearn.metrics import ConfusionMatrixDisplay, classification_report, confusion_matrix


def write_classification_report(probs: np.ndarray, targets: np.ndarray, classes: Sequence[str],
                                out_dir: str | Path, title: str = "") -> dict[str, Path]:
    """probs (N, 10), targets (N,) -> report.txt (precision/recall/F1 + class-wise accuracy),
    confusion_matrix.png, predictions.csv (index, true, predicted, probability)."""
    from aecls.core.plotting import plt, save_figure

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    preds = probs.argmax(1)
    labels = list(range(len(classes)))
    cm = confusion_matrix(targets, preds, labels=labels)
    per_class = cm.diagonal() / cm.sum(1).clip(min=1)
    text = classification_report(targets, preds, labels=labels, target_names=list(classes), digits=4,
                                 zero_division=0)
    text += "\nclass-wise accuracy\n" + "\n".join(
        f"{name:>14s}  {acc:.4f}" for name, acc in zip(classes, per_class, strict=True))
    text += f"\n\noverall accuracy {float((preds == targets).mean()):.4f} on {len(targets)} images\n"
    (out / "report.txt").write_text(text)
    fig, ax = plt.subplots(figsize=(8, 7))
    ConfusionMatrixDisplay(cm, display_labels=list(classes)).plot(ax=ax, xticks_rotation=45,
                                                                   colorbar=False)
    ax.set(title=title or "Confusion matrix (test set)", xlabel="predicted class", ylabel="true class")
    save_figure(fig, out / "confusion_matrix.png")
    with open(out / "predictions.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["index", "true", "predicted", "probability"])
        for i, (t, p) in enumerate(zip(targets, preds, strict=True)):
            w.writerow([i, classes[t], classes[p], f"{probs[i, p]:.6f}"])
    return {name: out / name for name in ("report.txt", "confusion_matrix.png", "predictions.csv")}
