"""A cheap linear probe of an encoder: how well do its frozen latent codes separate the classes?

The transfer-aware study objective (`objective: probe` in a study file) needs a score every epoch,
for the pruner. We use logistic regression on the latents of the validation split (5k images),
fitted on a fixed 80 % of them and scored on the other 20 %:
- fast: encoding 5k images plus an L-BFGS fit on (4000, latent) takes well under a second on CPU;
- stable: the fit is convex and deterministic, so the score moves only when the encoder does (a
  small trained head would add its own seed and schedule noise to every epoch's number);
- honest: it uses no training labels and never touches the test set.
"""

from __future__ import annotations

import numpy as np
import torch
from lightning.pytorch.callbacks import Callback
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

PROBE_METRIC = "val/probe_acc"


@torch.no_grad()
def encode(module, images: torch.Tensor, batch: int = 1000) -> np.ndarray:
    """(N, 28, 28) uint8 -> (N, latent) codes (a VAE's mean), with the module in eval mode."""
    was_training = module.training
    module.eval()
    out = []
    for i in range(0, len(images), batch):
        x = images[i : i + batch].unsqueeze(1).float().div(255).to(module.device)
        z = module.encode(x)
        out.append((z[0] if isinstance(z, tuple) else z).float().cpu())
    module.train(was_training)
    return torch.cat(out).numpy()


def probe_accuracy(z: np.ndarray, y: np.ndarray, fit_fraction: float = 0.8, seed: int = 0) -> float:
    """Logistic regression fitted on a seeded `fit_fraction` of (z, y), accuracy on the rest."""
    order = np.random.default_rng(seed).permutation(len(z))
    cut = int(fit_fraction * len(z))
    fit, held = order[:cut], order[cut:]
    if not np.isfinite(z).all():
        return float("nan")  # a diverged encoder: the trial is pruned like a NaN loss
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=300))
    clf.fit(z[fit], y[fit])
    return float(clf.score(z[held], y[held]))


class LatentProbe(Callback):
    """Logs `val/probe_acc` after every validation epoch (before checkpointing and pruning read it)."""

    def __init__(self, fit_fraction: float = 0.8, seed: int = 0) -> None:
        self.fit_fraction, self.seed = fit_fraction, seed

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking:
            return
        images, labels = trainer.datamodule.splits["val"]
        acc = probe_accuracy(encode(pl_module, images), labels.cpu().numpy(), self.fit_fraction, self.seed)
        pl_module.log(PROBE_METRIC, acc)
