"""The rules `aecls study best --select RULE` picks a trial by (no torch: the CLI reads them)."""

from __future__ import annotations

# How `aecls study best --select RULE` picks the trial to re-run. On a `multi` study every rule
# but `loss` chooses from the Pareto front; a single-objective study has one rule, its objective.
RULES = {
    "recon": "best of the family's score (its study metric: a VAE's ELBO, an autoencoder's clean MSE, "
             "a pretext's probe accuracy)",
    "loss": "lowest val/loss (the training loss)",
    "probe": "highest val/probe_acc (linear probe on the frozen latents)",
    "knee": "the Pareto-front trial nearest the ideal point, both objectives min-max scaled over the front",
}
