"""Non-deep reference points for the autoencoders' test metrics (scikit-learn / closed form).

Inputs are float arrays (N, 784) in [0, 1]; every baseline is fitted on the training split only.
"""

from __future__ import annotations

import numpy as np
from sklearn.decomposition import PCA


def pca_test_mse(train: np.ndarray, test: np.ndarray, n_components: int, seed: int = 0) -> float:
    """Per-pixel MSE of the best linear code of the same size: PCA reconstructions, clipped to [0, 1]."""
    pca = PCA(n_components=n_components, random_state=seed).fit(train)
    recon = pca.inverse_transform(pca.transform(test)).clip(0.0, 1.0)
    return float(((recon - test) ** 2).mean())


def independent_pixel_nll(train: np.ndarray, test: np.ndarray, eps: float = 1e-4) -> float:
    """Nats per test image under one Bernoulli per pixel with p = the pixel's training mean.

    The same (cross-entropy on grey levels) likelihood as the VAE's decoder, so the two compare.
    """
    p = train.mean(axis=0).clip(eps, 1 - eps)  # (784,)
    ce = -(test * np.log(p) + (1 - test) * np.log1p(-p))  # (N, 784)
    return float(ce.sum(axis=1).mean())


def flat(images: np.ndarray) -> np.ndarray:
    """(N, 28, 28) uint8 -> (N, 784) float32 in [0, 1]."""
    return images.reshape(len(images), -1).astype(np.float32) / 255.0


def baselines_for(module, train_images: np.ndarray, test_images: np.ndarray) -> dict[str, float]:
    """The reference numbers to print beside a module's test metrics, named like the metrics."""
    from aecls.modules import VAE, AutoEncoder

    train, test = flat(train_images), flat(test_images)
    if isinstance(module, VAE):
        return {"baseline/independent_pixel_nll": independent_pixel_nll(train, test)}
    if isinstance(module, AutoEncoder) and module.hparams.noise_sigma == 0:
        k = module.net_cfg.latent_dim
        return {f"baseline/pca{k}_mse": pca_test_mse(train, test, k)}
    return {}
