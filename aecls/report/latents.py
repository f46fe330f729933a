"""Latent codes of the test set and what the report draws from them (scikit-learn PCA / t-SNE)."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE


@torch.no_grad()
def decode(module, z: np.ndarray) -> np.ndarray:
    """(n, latent) codes -> (n, 28, 28) images in [0, 1]."""
    x = torch.sigmoid(module.decoder(torch.as_tensor(z, dtype=torch.float32, device=module.device)))
    return x[:, 0].cpu().numpy()


def pca_2d(z: np.ndarray, seed: int = 0) -> np.ndarray:
    return PCA(2, random_state=seed).fit_transform(z) if z.shape[1] > 2 else z


def tsne_2d(z: np.ndarray, seed: int = 0) -> np.ndarray:
    return TSNE(2, init="pca", random_state=seed, perplexity=min(30.0, (len(z) - 1) / 3)).fit_transform(z)


def interpolate(z_a: np.ndarray, z_b: np.ndarray, steps: int = 8) -> np.ndarray:
    """Straight line from code a to code b, (steps, latent)."""
    t = np.linspace(0, 1, steps)[:, None]
    return (1 - t) * z_a + t * z_b


def gaussian_samples(z: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """n codes from a full-covariance Gaussian fitted to `z`."""
    rng = np.random.default_rng(seed)
    return rng.multivariate_normal(z.mean(0), np.cov(z, rowvar=False), size=n)
