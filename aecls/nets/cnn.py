"""The supervised CNN baseline the seed reports built: conv blocks with BatchNorm, max-pool and
dropout, as a plain nn.Module feature extractor (the Classifier adds the head)."""

from __future__ import annotations

import torch
from torch import nn


def _conv_bn(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]


class SupervisedCNN(nn.Module):
    def __init__(self, out_dim: int = 256, width: int = 32, dropout: float = 0.25) -> None:
        super().__init__()
        w = width
        self.out_dim = out_dim
        self.net = nn.Sequential(
            *_conv_bn(1, w), *_conv_bn(w, w), nn.MaxPool2d(2), nn.Dropout(dropout),  # (B, w, 14, 14)
            *_conv_bn(w, 2 * w), *_conv_bn(2 * w, 2 * w), nn.MaxPool2d(2), nn.Dropout(dropout),  # 7x7
            *_conv_bn(2 * w, 4 * w), nn.AdaptiveAvgPool2d(1), nn.Flatten(),  # (B, 4w)
            nn.Linear(4 * w, out_dim), nn.ReLU(),  # (B, out_dim)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 1, 28, 28) -> (B, out_dim)
        return self.net(x)
