"""The supervised CNN baseline: conv blocks with BatchNorm, max-pool and
dropout, as a plain nn.Module feature extractor (the Classifier adds the head), and a decoder
that mirrors it, so the same feature extractor can be pretrained as an autoencoder and then
fine-tuned: the transfer question asked of an encoder as strong as the supervised baseline's."""

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


class CNNDecoder(nn.Module):
    """Code -> image for a `SupervisedCNN` encoder: FC to a 4w x 7 x 7 map, then two
    (upsample x2, conv-BN-ReLU) stages and a 1-channel conv giving logits."""

    def __init__(self, latent_dim: int = 256, width: int = 32) -> None:
        super().__init__()
        w = width
        self.net = nn.Sequential(
            nn.Linear(latent_dim, 4 * w * 49), nn.ReLU(), nn.Unflatten(1, (4 * w, 7, 7)),  # (B, 4w, 7, 7)
            *_conv_bn(4 * w, 2 * w), nn.Upsample(scale_factor=2),  # (B, 2w, 14, 14)
            *_conv_bn(2 * w, w), nn.Upsample(scale_factor=2),  # (B, w, 28, 28)
            *_conv_bn(w, w), nn.Conv2d(w, 1, 3, padding=1),  # (B, 1, 28, 28) logits
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # (B, latent) -> logits (B, 1, 28, 28)
        return self.net(z)
