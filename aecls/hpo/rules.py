"""The rules `aecls study best --select RULE` picks a trial by, and how its test metrics are
labelled (no torch: the CLI and the report read them)."""

from __future__ import annotations

from typing import Any

from aecls.evaluation.stats import sample_sd

# How `aecls study best --select RULE` picks the trial to re-run. On a `multi` study every rule
# but `loss` chooses from the Pareto front; a single-objective study has one rule, its objective.
RULES = {
    "recon": "best of the family's score (its study metric: a VAE's ELBO, an autoencoder's clean MSE, "
             "a pretext's probe accuracy)",
    "loss": "lowest val/loss (the training loss)",
    "probe": "highest val/probe_acc (linear probe on the frozen latents)",
    "knee": "the Pareto-front trial nearest the ideal point, both objectives min-max scaled over the front",
}


def test_rows(info: dict[str, Any]) -> list[tuple[str, dict[str, float], str]]:
    """(test metric, its mean and sd, a note) of a best.json: the metric the study compared first,
    and test/loss said to be the training loss where the study searched a key that changes it (a
    VAE's beta-weighted loss is no quantity to read beside another beta's). The spread is the
    sample sd of the runs' values (aecls.evaluation.stats), recomputed from the runs the record keeps, so a
    best.json written when it held numpy's ddof = 0 sd reads the same as a new one."""
    compared = "test/" + info.get("monitor", "val/loss").split("/", 1)[-1]
    varies = info.get("loss_varies_with") or []
    rows = []
    for name, given in info["test"].items():
        values = [r["test"][name] for r in info.get("runs", []) if name in r.get("test", {})]
        stats = {"mean": given["mean"], "sd": sample_sd(values) if values else given.get("sd", given["std"])}
        note = "  (the metric the study compared)" if name == compared else ""
        if name == "test/loss" and varies:
            note = f"  (the training loss: it changes with {', '.join(varies)}; compare {compared})"
        rows.append((name, stats, note))
    return sorted(rows, key=lambda r: r[0] != compared)
