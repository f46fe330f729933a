"""Batched, on-device image transforms: Gaussian noise for denoising, random crop + flip for training.

All take and return float images (B, 1, 28, 28) in [0, 1] and draw from an explicit generator on
the images' device, so a seeded generator gives the same result on every run.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """(N, 28, 28) uint8 images -> (N, 1, 28, 28) float in [0, 1], on the same device."""
    return images.unsqueeze(1).float().div_(255.0)


def add_noise(x: torch.Tensor, sigma: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """x + N(0, sigma^2) per pixel, clipped back to [0, 1]."""
    if sigma <= 0:
        return x
    noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return (x + sigma * noise).clamp_(0.0, 1.0)


def random_crop(x: torch.Tensor, padding: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Zero-pad by `padding` and cut a random HxW window per image (one gather, no Python loop)."""
    if padding <= 0:
        return x
    b, c, h, w = x.shape
    padded = F.pad(x, (padding,) * 4)  # (B, C, H+2p, W+2p)
    dy = torch.randint(0, 2 * padding + 1, (b,), generator=generator, device=x.device)
    dx = torch.randint(0, 2 * padding + 1, (b,), generator=generator, device=x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]  # (B, 1, H, 1)
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]  # (B, 1, 1, W)
    batch = torch.arange(b, device=x.device)[:, None, None, None]
    chans = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[batch, chans, rows, cols]


def random_hflip(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Mirror a random half of the images left-right."""
    flip = torch.rand(x.shape[0], generator=generator, device=x.device) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(-1), x)


def augment(x: torch.Tensor, padding: int = 2, generator: torch.Generator | None = None) -> torch.Tensor:
    """Training augmentation for classifiers: random crop with zero padding, then horizontal flip."""
    return random_hflip(random_crop(x, padding, generator), generator)
