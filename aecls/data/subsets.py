"""Seeded splits and stratified label subsets, as index arrays into the training images."""

from __future__ import annotations

import numpy as np

from aecls.core.errors import DataError


def train_val_split(n: int, val_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random (train_idx, val_idx) of range(n); the same seed always gives the same split."""
    if not 0 < val_size < n:
        raise DataError(f"val_size={val_size} must be between 1 and {n - 1} (training set has {n} images)")
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[val_size:]), np.sort(perm[:val_size])


def per_class_counts(n_labels: int, n_classes: int) -> np.ndarray:
    """Split a total label budget as evenly as possible over classes (the first classes get the rest)."""
    counts = np.full(n_classes, n_labels // n_classes)
    counts[: n_labels % n_classes] += 1
    return counts


def balanced_counts(n_labels: int, pools: np.ndarray) -> np.ndarray:
    """Images to take of each class: `per_class_counts` where every class has enough; a class
    with fewer images than its share gives them all and the others share the rest (so a budget
    up to the whole split works although its classes are not exactly balanced)."""
    counts = np.zeros(len(pools), dtype=int)
    while (remaining := n_labels - int(counts.sum())) > 0:
        room = np.flatnonzero(counts < pools)
        share = per_class_counts(remaining, len(room))
        counts[room] += np.minimum(share, pools[room] - counts[room])
    return counts


def stratified_subset(labels: np.ndarray, n_labels: int, seed: int, per_class: bool = False) -> np.ndarray:
    """Sorted indices of a class-balanced random subset of `labels`.

    `n_labels` is the total budget, or the count of each class with `per_class=True`. The same
    labels, budget and seed give the same subset on every run; subsets for one seed are not nested.
    """
    classes = np.unique(labels)
    if n_labels <= 0:
        raise DataError(f"n_labels={n_labels} must be positive")
    if per_class:
        counts = np.full(len(classes), n_labels)
    else:
        if n_labels > len(labels):
            raise DataError(f"label budget {n_labels} is more than the {len(labels)} images of the "
                            "training split; use a smaller n_labels (or all labels)")
        counts = balanced_counts(n_labels, np.array([np.sum(labels == c) for c in classes]))
    rng = np.random.default_rng(seed)
    chosen = []
    for cls, k in zip(classes, counts, strict=True):
        pool = np.flatnonzero(labels == cls)
        if k > len(pool):
            total = int(counts.sum())
            raise DataError(
                f"label budget {total} needs {k} images of class {cls}, but the training split has "
                f"only {len(pool)} (of {len(labels)} in all); use a smaller n_labels"
            )
        chosen.append(rng.choice(pool, size=k, replace=False))
    return np.sort(np.concatenate(chosen))
