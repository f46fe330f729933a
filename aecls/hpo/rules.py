"""The rules `aecls study best --select RULE` picks a trial by (no torch: the CLI reads them)."""

# How `aecls study best --select RULE` picks the trial to re-run. On a `multi` study every rule
# chooses from the Pareto front; a single-objective study has one rule, its own objective.
RULES = {
    "recon": "lowest val/loss",
    "probe": "highest val/probe_acc (linear probe on the frozen latents)",
    "knee": "the Pareto-front trial nearest the ideal point, both objectives min-max scaled over the front",
}
