"""Barlow Twins (Zbontar et al. 2021): a two-view pretext without negatives.

Why this one for the few-label question on 2 CPU cores: SimCLR needs many negatives in a batch
(configs/simclr.yaml uses 512) and BYOL a second, momentum network; Barlow Twins has neither. It
makes the cross-correlation matrix of the two views' projections, standardised over the batch,
close to the identity: the diagonal says the views agree, the off-diagonal that the code's
dimensions carry different information (no collapse). The paper reports it robust to small
batches, so a CPU-sized batch and one network pass per view suffice. Its encoder transfers like
SimCLR's (the same views and encoder nets: `TwoViews`).
"""

from __future__ import annotations

import torch
from torch import nn

from aecls.core.constants import PROBE_METRIC
from aecls.core.errors import check
from aecls.modules.contrastive import TwoViews
from aecls.modules.optim import OptimConfig
from aecls.modules.registry import Family, register
from aecls.nets import NetConfig


def barlow_twins_loss(p1: torch.Tensor, p2: torch.Tensor, off_diagonal: float) -> torch.Tensor:
    """sum_i (1 - C_ii)^2 + off_diagonal * sum_{i != j} C_ij^2, a scalar.

    p1, p2: (B, D) projections of the two views of the same B images. C (D, D) is their
    cross-correlation: each dimension standardised over the batch, C = p1n.T @ p2n / B.
    """
    b = p1.shape[0]
    p1n = (p1 - p1.mean(0)) / (p1.std(0) + 1e-5)  # (B, D)
    p2n = (p2 - p2.mean(0)) / (p2.std(0) + 1e-5)
    c = p1n.T @ p2n / b  # (D, D)
    on = (torch.diagonal(c) - 1).pow(2).sum()
    off = c.pow(2).sum() - torch.diagonal(c).pow(2).sum()
    return on + off_diagonal * off


class BarlowTwins(TwoViews):
    """Barlow Twins: two views' projections made to correlate as the identity matrix.

    Args:
        net: encoder architecture (conv or cnn; its code is what transfers).
        optim: optimiser and schedule.
        proj_dim: width of the projector's layers (the correlation matrix is proj_dim^2).
        off_diagonal: weight of the redundancy term (the paper's lambda; about 1 / proj_dim).
        seed: seeds the training views (with the step) and nothing else.
    """

    def __init__(self, net: NetConfig | None = None, optim: OptimConfig | None = None,
                 proj_dim: int = 256, off_diagonal: float = 0.005, seed: int = 0) -> None:
        check(proj_dim >= 2, f"proj_dim must be >= 2, got {proj_dim}")
        check(off_diagonal >= 0, f"off_diagonal must be >= 0, got {off_diagonal}")
        super().__init__(net, optim, proj_dim=proj_dim, off_diagonal=off_diagonal, seed=seed)

    def head(self, latent_dim: int) -> nn.Module:
        d = self.hparams.proj_dim  # the paper's projector: Linear-BN-ReLU, then Linear
        return nn.Sequential(nn.Linear(latent_dim, d, bias=False), nn.BatchNorm1d(d), nn.ReLU(),
                             nn.Linear(d, d))

    def loss(self, p1: torch.Tensor, p2: torch.Tensor) -> torch.Tensor:
        return barlow_twins_loss(p1, p2, self.hparams.off_diagonal)


# Its loss sums over proj_dim^2 correlations weighted by off_diagonal: a study compares the probe.
register(Family("barlow", BarlowTwins, "pretext",
                score=PROBE_METRIC, maximize=True, loss_keys={"proj_dim", "off_diagonal"}))
