"""Batched, on-device image transforms: Gaussian noise for denoising, random crop + flip for training.

All take and return float images (B, 1, 28, 28) in [0, 1] and draw from an explicit generator on
the images' device, so a seeded generator gives the same result on every run.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def step_generator(device: torch.device | str, seed: int, step: int) -> torch.Generator:
    """The generator for optimiser step `step` of a run seeded `seed`: each step draws its own
    augmentations, and the run draws them again the same way."""
    return torch.Generator(device=device).manual_seed(seed * 1_000_003 + step)


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


def contrastive_view(x: torch.Tensor, generator: torch.Generator | None = None, min_scale: float = 0.6,
                     max_degrees: float = 12.0, jitter: float = 0.4, noise: float = 0.05,
                     erase: float = 0.3) -> torch.Tensor:
    """One random view per image for contrastive learning, all batched on the device:
    crop-and-resize (scale in [min_scale, 1] of the side, random place), horizontal flip, a small
    rotation (one affine warp), brightness and contrast jitter, Gaussian noise, and with
    probability `erase` a random rectangle erased. Clothes keep their class under all of these
    (no vertical flips: a shirt upside down is not a shirt). (B, 1, 28, 28) in [0, 1] -> same."""
    b, dev = x.shape[0], x.device

    def u(lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(b, generator=generator, device=dev)

    scale = u(min_scale, 1.0)  # side of the crop, relative
    angle = u(-max_degrees, max_degrees) * (torch.pi / 180)
    flip = torch.where(torch.rand(b, generator=generator, device=dev) < 0.5, -1.0, 1.0)
    shift = (1 - scale)[:, None] * (2 * torch.rand(b, 2, generator=generator, device=dev) - 1)
    cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
    theta = torch.stack([torch.stack([cos * flip, -sin, shift[:, 0]], 1),
                         torch.stack([sin * flip, cos, shift[:, 1]], 1)], 1)  # (B, 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    v = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    contrast, brightness = u(1 - jitter, 1 + jitter), u(-jitter / 2, jitter / 2)
    mean = v.mean(dim=(1, 2, 3), keepdim=True)
    v = (v - mean) * contrast[:, None, None, None] + mean + brightness[:, None, None, None]
    v = v + noise * torch.randn(v.shape, generator=generator, device=dev, dtype=v.dtype)
    h, w = x.shape[-2:]
    eh, ew = (u(0.2, 0.5) * h).long(), (u(0.2, 0.5) * w).long()
    top, left = (u(0, 1) * (h - eh)).long(), (u(0, 1) * (w - ew)).long()
    rows = torch.arange(h, device=dev)[None, :, None]
    cols = torch.arange(w, device=dev)[None, None, :]
    box = ((rows >= top[:, None, None]) & (rows < (top + eh)[:, None, None])
           & (cols >= left[:, None, None]) & (cols < (left + ew)[:, None, None]))
    hit = (torch.rand(b, generator=generator, device=dev) < erase)[:, None, None]
    v = v.masked_fill((box & hit)[:, None], 0.0)
    return v.clamp_(0.0, 1.0)
