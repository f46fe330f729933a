"""Barlow Twins: the loss against its definition written out, and its own study keys. (Fit, study,
sweep and `aecls test` are tests/test_registry.py's, for every registered family.)"""

from __future__ import annotations

import optuna
import pytest
import torch

from aecls.cli import main
from aecls.modules.barlow import BarlowTwins, barlow_twins_loss
from aecls.modules.registry import family
from tests.helpers import finished, write_study


def _written_out(p1: torch.Tensor, p2: torch.Tensor, lam: float) -> float:
    """The paper's loss, one correlation coefficient at a time."""
    b, d = p1.shape
    z1 = (p1 - p1.mean(0)) / (p1.std(0) + 1e-5)
    z2 = (p2 - p2.mean(0)) / (p2.std(0) + 1e-5)
    total = 0.0
    for i in range(d):
        for j in range(d):
            c = float(sum(z1[n, i] * z2[n, j] for n in range(b)) / b)
            total += (1 - c) ** 2 if i == j else lam * c**2
    return total


def test_the_loss_is_the_papers():
    g = torch.Generator().manual_seed(0)
    p1, p2 = torch.randn(16, 5, generator=g), torch.randn(16, 5, generator=g)
    assert float(barlow_twins_loss(p1, p2, 0.1)) == pytest.approx(_written_out(p1, p2, 0.1), rel=1e-4)


def test_agreeing_decorrelated_views_cost_little_and_a_collapsed_code_much():
    x = torch.linalg.qr(torch.randn(64, 8, generator=torch.Generator().manual_seed(1)))[0] * 8  # orthogonal
    same = float(barlow_twins_loss(x, x, 1.0))
    collapsed = x[:, :1].expand(-1, 8)  # every dimension the same number: fully redundant
    assert same < 0.1 < float(barlow_twins_loss(collapsed, collapsed, 1.0)) - 50


def test_bad_values_are_one_line_errors():
    from aecls.core.errors import AeclsError

    with pytest.raises(AeclsError, match="proj_dim must be >= 2"):
        BarlowTwins(proj_dim=1)
    with pytest.raises(AeclsError, match="off_diagonal must be >= 0"):
        BarlowTwins(off_diagonal=-1)


def test_a_study_searches_its_own_keys(tiny_data):
    assert family("barlow").study_keys == {"proj_dim", "off_diagonal"}
    path = write_study("barlow_keys", model="barlow", epochs=1, n_trials=1, pruner="none", space={
        "n_channels": 4, "latent_dim": 8, "proj_dim": {"type": "categorical", "choices": [16, 32]},
        "off_diagonal": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True}})
    assert main(["study", "run", str(path), "--data-dir", str(tiny_data), "--no-progress"]) == 0
    (trial,) = finished(optuna.load_study(study_name="barlow_keys", storage="sqlite:///optuna.db"))
    assert set(trial.params) == {"proj_dim", "off_diagonal"}
