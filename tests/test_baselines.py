"""Baselines: PCA reconstruction error and the independent-pixel likelihood."""

from __future__ import annotations

import math

import numpy as np

from aecls.evaluation.baselines import independent_pixel_nll, pca_test_mse


def test_pca_mse_falls_with_components_and_is_exact_at_full_rank():
    rng = np.random.default_rng(0)
    basis = rng.uniform(0, 1, size=(5, 784)) / 5
    train, test = rng.uniform(0, 1, (200, 5)) @ basis, rng.uniform(0, 1, (50, 5)) @ basis
    errors = [pca_test_mse(train, test, k) for k in (1, 3, 5)]
    assert errors[0] > errors[1] > errors[2] and errors[2] < 1e-10


def test_independent_pixel_nll_of_half_grey():
    x = np.full((10, 784), 0.5)
    assert math.isclose(independent_pixel_nll(x, x), 784 * math.log(2), rel_tol=1e-6)
