"""Logistic regression on the subset's raw pixels, and on their PCA codes of the encoder's latent
size: the non-deep baselines (no encoder weights)."""

from __future__ import annotations

from functools import partial

from aecls.transfer.methods import Run, SweepMethod, register


def _run(pca: bool, r: Run) -> float:
    from aecls.transfer import runners

    return runners.logreg(r, pca)


register(SweepMethod("logreg_pixels", "baseline", partial(_run, False), uses_encoder=False, reference=True,
                     default=True, title="raw pixels (logistic regression)"))
register(SweepMethod("logreg_pca", "baseline", partial(_run, True), uses_encoder=False, default=True,
                     title="PCA + logistic regression"))
