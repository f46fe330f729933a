"""Convolutional encoder/decoder of the CAE, as plain nn.Modules.

Encoder: three 3x3 stride-2 convs 1 -> c -> 2c -> 4c (28 -> 14 -> 7 -> 4), flatten, FC `hidden`,
FC `out_dim`. The decoder mirrors it with transposed convs and returns logits; the modules apply
the sigmoid (so a BCE or Bernoulli likelihood can use the numerically stable logits form).
"""

from __future__ import annotations

import torch
from torch import nn


def _block(conv: nn.Module, channels: int, batch_norm: bool) -> list[nn.Module]:
    return [conv, nn.BatchNorm2d(channels), nn.ReLU()] if batch_norm else [conv, nn.ReLU()]


def _mlp_head(d_in: int, hidden: int, d_out: int) -> list[nn.Module]:
    """d_in -> [hidden -> ReLU ->] d_out; hidden=0 means a single linear layer."""
    if hidden <= 0:
        return [nn.Linear(d_in, d_out)]
    return [nn.Linear(d_in, hidden), nn.ReLU(), nn.Linear(hidden, d_out)]


class ConvEncoder(nn.Module):
    def __init__(self, out_dim: int, n_channels: int = 16, hidden: int = 64,
                 batch_norm: bool = False) -> None:
        super().__init__()
        c = n_channels
        self.out_dim = out_dim
        self.net = nn.Sequential(
            *_block(nn.Conv2d(1, c, 3, stride=2, padding=1), c, batch_norm),  # (B, c, 14, 14)
            *_block(nn.Conv2d(c, 2 * c, 3, stride=2, padding=1), 2 * c, batch_norm),  # (B, 2c, 7, 7)
            *_block(nn.Conv2d(2 * c, 4 * c, 3, stride=2, padding=1), 4 * c, batch_norm),  # (B, 4c, 4, 4)
            nn.Flatten(),  # (B, 64c)
            *_mlp_head(4 * c * 16, hidden, out_dim),  # (B, out_dim)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 1, 28, 28) -> (B, out_dim)
        return self.net(x)


class ConvDecoder(nn.Module):
    def __init__(self, latent_dim: int, n_channels: int = 16, hidden: int = 64,
                 batch_norm: bool = False) -> None:
        super().__init__()
        c = n_channels
        self.fc = nn.Sequential(*_mlp_head(latent_dim, hidden, 4 * c * 16), nn.ReLU())
        self.net = nn.Sequential(
            nn.Unflatten(1, (4 * c, 4, 4)),  # (B, 4c, 4, 4)
            *_block(nn.ConvTranspose2d(4 * c, 2 * c, 3, stride=2, padding=1), 2 * c, batch_norm),  # 7x7
            *_block(nn.ConvTranspose2d(2 * c, c, 3, stride=2, padding=1, output_padding=1), c,
                    batch_norm),  # (B, c, 14, 14)
            nn.ConvTranspose2d(c, 1, 3, stride=2, padding=1, output_padding=1),  # (B, 1, 28, 28)
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # (B, latent) -> logits (B, 1, 28, 28)
        return self.net(self.fc(z))
