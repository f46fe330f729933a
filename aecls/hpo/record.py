"""best.json as a type: what `aecls study best` writes and `study best`, the report and the
pipeline read alike, one reader for every version on disk (no torch: the report reads it)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from aecls.core.errors import AeclsError
from aecls.evaluation.stats import sample_sd


@dataclass(frozen=True)
class BestRecord:
    """The best trial of a study, re-trained and tested.

    Args:
        study: the study's name.
        model: its model family.
        trial: the trial re-run.
        params: the trial's drawn parameters.
        epochs: the length of each re-run.
        seeds: the seeds re-run, the trial's own first.
        test: {test metric: {"mean", "sd"}} over the re-runs (sd: the sample sd).
        runs: each re-run: seed, test metrics, validation score, checkpoint.
        encoder: the exported encoder: path, seed (the chosen re-run), checkpoint.
        objective, select, rule: what the study compared and how the trial was chosen.
        trial_values: the trial's own values, by metric.
        monitor: the metric each re-run's checkpoint was chosen by.
        trial_seed: the trial's own seed.
        reproduced: whether the re-run with the trial's seed gave its value back (None: not
            comparable).
        loss_varies_with: study keys that change test/loss (a VAE's beta).
        test_settings: test-only module arguments given to the tests (a VAE's nll_samples).
        net: the re-trained net's config.
    """

    study: str
    trial: int
    params: dict[str, Any]
    epochs: int
    seeds: list[int]
    test: dict[str, dict[str, float]]
    encoder: dict[str, Any]
    model: str = "cae"
    runs: list[dict[str, Any]] = field(default_factory=list)
    objective: str | None = None
    select: str | None = None
    rule: str | None = None
    trial_values: dict[str, float] = field(default_factory=dict)
    monitor: str = "val/loss"
    trial_seed: int | None = None
    reproduced: dict[str, Any] | None = None
    loss_varies_with: list[str] = field(default_factory=list)
    test_settings: dict[str, Any] = field(default_factory=dict)
    net: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def read(cls, path: str | Path) -> BestRecord:
        """A best.json of any version: `seeds` as a count (older files) is the seeds 0..n-1, and
        keys this class does not know are passed over."""
        try:
            raw = json.loads(Path(path).read_text())
            if isinstance(raw.get("seeds"), int):
                raw["seeds"] = list(range(raw["seeds"]))
            known = {k: v for k, v in raw.items() if k in cls.__dataclass_fields__}
            return cls(**known)
        except (OSError, ValueError, TypeError, AttributeError) as e:
            raise AeclsError(f"{path} is not a study's best.json ({type(e).__name__}: {e})") from e

    def write(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(asdict(self), indent=2))

    def test_rows(self) -> list[tuple[str, dict[str, float], str]]:
        """(test metric, its mean and sd, a note): the metric the study compared first, and
        test/loss said to be the training loss where the study searched a key that changes it (a
        VAE's beta-weighted loss is no quantity to read beside another beta's). The spread is the
        sample sd of the runs' values (aecls.evaluation.stats), recomputed from the runs the record
        keeps, so a best.json written when it held numpy's ddof = 0 sd reads as a new one."""
        compared = "test/" + self.monitor.split("/", 1)[-1]
        rows = []
        for name, given in self.test.items():
            values = [r["test"][name] for r in self.runs if name in r.get("test", {})]
            sd = sample_sd(values) if values else given.get("sd", given.get("std", 0.0))
            note = "  (the metric the study compared)" if name == compared else ""
            if name == "test/loss" and self.loss_varies_with:
                note = (f"  (the training loss: it changes with {', '.join(self.loss_varies_with)}; "
                        f"compare {compared})")
            rows.append((name, {"mean": given["mean"], "sd": sd}, note))
        return sorted(rows, key=lambda r: r[0] != compared)
