"""Fully connected encoder/decoder (784-256-32-16 by default), as plain nn.Modules."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
from torch import nn

PIXELS = 28 * 28


def _stack(sizes: Sequence[int]) -> list[nn.Module]:
    """Linear layers through `sizes` with ReLU between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return layers


class MLPEncoder(nn.Module):
    def __init__(self, out_dim: int, widths: Sequence[int] = (256, 32)) -> None:
        super().__init__()
        self.out_dim = out_dim
        self.net = nn.Sequential(nn.Flatten(), *_stack([PIXELS, *widths, out_dim]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 1, 28, 28) -> (B, out_dim)
        return self.net(x)


class MLPDecoder(nn.Module):
    def __init__(self, latent_dim: int, widths: Sequence[int] = (256, 32)) -> None:
        super().__init__()
        self.net = nn.Sequential(*_stack([latent_dim, *reversed(widths), PIXELS]),
                                 nn.Unflatten(1, (1, 28, 28)))

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # (B, latent) -> logits (B, 1, 28, 28)
        return self.net(z)
