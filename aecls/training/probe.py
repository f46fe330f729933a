"""A cheap linear probe of an encoder: how well do its frozen latent codes separate the classes?

The transfer-aware study objective (`objective: probe` in a study file) needs a score every epoch,
for the pruner. We use logistic regression on the latents of the validation split (5k images),
5-fold stratified cross-validation with fixed folds, mean accuracy:
- fast: Newton-CG converges in a few iterations on these small problems (L-BFGS needed many
  more), so encoding 5k images and the five fits cost a small fraction of a training epoch;
- stable: each fit is convex and deterministic, so the score moves only when the encoder does (a
  small trained head would add its own seed and schedule noise to every epoch's number), and all
  5,000 images are scored once: a single held-out 1,000 could not tell apart two encoders whose
  label sweeps differ, 5-fold ranks them like the sweep (docs/notebook.md, Transfer-aware search);
- honest: it uses no training labels and never touches the test set.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from lightning.pytorch.callbacks import Callback
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from aecls.core.constants import PROBE_METRIC
from aecls.data.transforms import to_unit


@torch.no_grad()
def encode(module, images: torch.Tensor, batch: int = 1000) -> np.ndarray:
    """(N, 28, 28) uint8 -> (N, latent) codes (a VAE's mean), with the module in eval mode."""
    was_training = module.training
    module.eval()
    out = []
    for i in range(0, len(images), batch):
        x = to_unit(images[i : i + batch]).to(module.device)
        z = module.encode(x)
        out.append((z[0] if isinstance(z, tuple) else z).float().cpu())
    module.train(was_training)
    return torch.cat(out).numpy()


def probe_accuracy(z: np.ndarray, y: np.ndarray, folds: int = 5, seed: int = 0) -> float:
    """Mean accuracy of logistic regression on (z, y) over `folds` seeded stratified folds."""
    if not np.isfinite(z).all():
        return float("nan")  # a diverged encoder: the trial is pruned like a NaN loss
    clf = make_pipeline(StandardScaler(), LogisticRegression(solver="newton-cg", max_iter=100))
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        # A rare capped fit is still deterministic; a warning per epoch would bury the output.
        warnings.simplefilter("ignore", ConvergenceWarning)
        return float(cross_val_score(clf, z, y, cv=cv).mean())


class LatentProbe(Callback):
    """Logs `val/probe_acc` after every validation epoch (before checkpointing and pruning read it)."""

    def __init__(self, folds: int = 5, seed: int = 0) -> None:
        self.folds, self.seed = folds, seed

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking:
            return
        images, labels = trainer.datamodule.splits["val"]
        acc = probe_accuracy(encode(pl_module, images), labels.cpu().numpy(), self.folds, self.seed)
        # every rank scores the whole split, so the synced mean is that same score
        pl_module.log(PROBE_METRIC, acc, sync_dist=trainer.world_size > 1)
