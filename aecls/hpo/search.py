"""How a study searches: its sampler and pruner, built from the study file's settings (the study's
checks build them once to refuse bad arguments; `open_study` builds the ones it runs with)."""

from __future__ import annotations

from typing import Any

import optuna

from aecls.hpo.sampler import TrialSeededTPESampler


def pruner_for(name: str, args: dict[str, Any], epochs: int) -> optuna.pruners.BasePruner:
    """Median by default: it waits for 3 finished trials, then stops a trial whose epoch score
    is worse than the median of earlier trials at the same epoch, from the first epoch on
    (RESULTS.md compares warm-up settings). `threshold` stops a trial whose score crosses
    `args` (lower/upper), Optuna's ThresholdPruner; `hyperband` runs to `epochs`."""
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(**{"min_resource": 1, "max_resource": epochs, **args})
    if name == "threshold":
        return optuna.pruners.ThresholdPruner(**args)
    if name == "none":
        return optuna.pruners.NopPruner(**args)
    return optuna.pruners.MedianPruner(**{"n_startup_trials": 3, "n_warmup_steps": 0, **args})


def sampler_for(seed: int, args: dict[str, Any]) -> TrialSeededTPESampler:
    """TPE, re-seeded per trial from the study's seed. `constant_liar` lets parallel workers
    avoid sampling right where a running trial is; `args` passes Optuna's other TPE options
    (BENCHMARKS.md, "Study overhead", measures some at thousands of trials)."""
    return TrialSeededTPESampler(seed, **{"constant_liar": True, **args})
