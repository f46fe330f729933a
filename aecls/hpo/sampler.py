"""Seeds of a study: each trial's training seed, and a TPE sampler re-seeded for every trial.

Both derive from (the study's seed, the trial number). The storage hands out trial numbers once
each, whatever process or host asks, so a continued study, a second worker, a second command or a
second host never draws with a seed already used, and a fresh study run the same way draws the
same configs again. Optuna seeds a sampler once per process (`TPESampler(seed=...)`), which
replays the first draws in every process started with that seed; it has no per-trial seeding, so
this wrapper adds it and leaves the sampling itself to TPE.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler, TPESampler
from optuna.trial import FrozenTrial, TrialState

# Separate streams, so a trial's training seed never equals the seed its config was drawn with.
SAMPLER_STREAM, TRIAL_STREAM, RERUN_STREAM = 0, 1, 2


def derive_seed(*parts: int) -> int:
    """A seed in [0, 2**31) mixed from non-negative integers (numpy's SeedSequence, not a sum:
    (1, 2) and (2, 1) give unrelated seeds)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0] % 2**31)


def trial_seed(study_seed: int, number: int) -> int:
    """The seed a trial trains with (weights, noise): recorded as its user attr `seed`."""
    return derive_seed(study_seed, TRIAL_STREAM, number)


def rerun_seeds(seed: int, n: int) -> list[int]:
    """The seeds `study best` re-trains with: the trial's own first, then n - 1 others."""
    return [seed] + [derive_seed(seed, RERUN_STREAM, k) for k in range(1, n)]


class TrialSeededTPESampler(BaseSampler):
    """TPE whose random state is re-seeded before each trial from (study seed, trial number).

    One process runs one trial at a time here (`n_jobs=1`): the TPE built in `before_trial` is
    the one that samples that trial.
    """

    def __init__(self, seed: int, **tpe_kwargs: Any) -> None:
        self.seed, self._kwargs = seed, tpe_kwargs
        self._tpe = TPESampler(seed=seed, **tpe_kwargs)

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        fresh = TPESampler(seed=derive_seed(self.seed, SAMPLER_STREAM, trial.number), **self._kwargs)
        # TPE updates its intersection search space incrementally, per instance; a fresh instance
        # would rescan every trial's distributions, which at thousands of trials was half of the
        # sampler's time (BENCHMARKS.md, study overhead). The space is a function of the trials,
        # not of the seed, so the fresh sampler carries the old one's on and draws the same.
        fresh._search_space = self._tpe._search_space
        self._tpe = fresh
        self._tpe.before_trial(study, trial)

    def infer_relative_search_space(self, study: optuna.Study,
                                    trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return self._tpe.infer_relative_search_space(study, trial)

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        return self._tpe.sample_relative(study, trial, search_space)

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        return self._tpe.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state: TrialState,
                    values: Sequence[float] | None) -> None:
        self._tpe.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self._tpe.reseed_rng()
