"""Transfer-aware studies on tiny synthetic data: the `probe` and `multi` objectives, pruning on
the probe, Pareto selection rules, and what best.json records."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from aecls.cli import main
from aecls.core.errors import AeclsError
from aecls.hpo.best import rerun_best, select_trial
from aecls.hpo.record import BestRecord
from aecls.hpo.run import open_study, run_study
from aecls.hpo.space import load_study
from aecls.hpo.summary import summary
from aecls.training.probe import PROBE_METRIC, probe_accuracy
from tests.helpers import finished, write_study


def test_probe_accuracy_separates_separable_codes():
    rng = np.random.default_rng(0)
    y = np.arange(500) % 10
    good = np.eye(10)[y] + 0.1 * rng.normal(size=(500, 10))
    assert probe_accuracy(good, y) == 1.0
    assert probe_accuracy(rng.normal(size=(500, 10)), y) < 0.4  # chance is 0.1
    assert np.isnan(probe_accuracy(np.full((500, 4), np.nan), y))


def test_probe_study_maximises_the_probe_and_rerun_records_it(tiny_data):
    spec = load_study(write_study("probe", epochs=2, objective="probe", data={"val_size": 100}))
    study = run_study(spec, 3, "sqlite:///p.db", data_dir=str(tiny_data), progress=False)
    assert study.direction == optuna.study.StudyDirection.MAXIMIZE and len(finished(study)) == 3
    for t in study.get_trials(states=(TrialState.COMPLETE,)):
        curve = t.user_attrs["history"][PROBE_METRIC]
        assert len(curve) == 2 and all(0 <= a <= 1 for a in curve)
        assert t.value == max(curve)  # the best epoch, which is the one checkpointed
        assert [t.intermediate_values[k] for k in sorted(t.intermediate_values)] == curve  # reported
    info = rerun_best(spec, study, seeds=1, data_dir=str(tiny_data))
    saved = json.loads(Path("artifacts/probe/best.json").read_text())
    assert BestRecord.read("artifacts/probe/best.json") == info  # the record reads back as written
    assert (saved["objective"], saved["select"], saved["monitor"]) == ("probe", "probe", PROBE_METRIC)
    assert saved["trial"] == study.best_trial.number
    assert 0 <= saved["runs"][0]["val_score"] <= 1  # the seed was chosen on the probe, not the loss


def test_median_pruner_prunes_on_the_probe(tiny_data):
    """Three hand-made finished trials with a probe accuracy no encoder can reach: the median
    pruner (direction maximise) must stop the next real trial after its warm-up epoch."""
    spec = load_study(write_study("pp", epochs=4, objective="probe", data={"val_size": 100},
                                  pruner_args={"n_warmup_steps": 1}))  # from the study file
    study = open_study(spec, "sqlite:///pp.db")
    for _ in range(3):
        study.add_trial(create_trial(value=1.5, intermediate_values={e: 1.5 for e in range(4)},
                                     user_attrs={"epochs_run": 4}))
    study = run_study(spec, 4, "sqlite:///pp.db", data_dir=str(tiny_data), progress=False)
    (real,) = [t for t in study.trials if "history" in t.user_attrs]
    assert real.state == TrialState.PRUNED and real.user_attrs["epochs_run"] == 2
    assert len(real.intermediate_values) == 2
    assert summary(spec, study)["pruning_saved"] > 0


def test_multi_study_pareto_front_plots_and_best_json(tiny_data, capsys):
    path = str(write_study("multi", epochs=2, objective="multi", pruner="none", data={"val_size": 100}))
    common = [path, "--storage", "sqlite:///m.db", "--data-dir", str(tiny_data)]
    assert main(["study", "run", *common, "--n-trials", "3", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "Pareto trial" in out
    for png in ("pareto_front", "history_clean_mse", "history_probe_acc", "val_curves"):
        assert Path(f"artifacts/multi/{png}.png").stat().st_size > 1000
    spec = load_study(path)
    study = open_study(spec, "sqlite:///m.db")
    for t in study.get_trials(states=(TrialState.COMPLETE,)):
        loss, acc = t.values
        hist = t.user_attrs["history"]
        assert t.user_attrs["epochs_run"] == 2 and not t.intermediate_values  # never pruned
        # both values come from the epoch of the best score (a CAE's: MSE on clean images)
        i = hist["val/clean_mse"].index(loss)
        assert loss == min(hist["val/clean_mse"]) and acc == hist[PROBE_METRIC][i]
    assert main(["study", "best", *common, "--seeds", "1", "--select", "probe"]) == 0
    saved = json.loads(Path("artifacts/multi/best.json").read_text())
    assert (saved["objective"], saved["select"]) == ("multi", "probe")
    assert saved["trial"] == select_trial(spec, study, "probe")[0].number
    assert set(saved["trial_values"]) == {"val/clean_mse", PROBE_METRIC}


def hand_made_front() -> optuna.Study:
    """(val/loss, probe accuracy) per trial: A, B, C on the Pareto front, D dominated by B."""
    study = optuna.create_study(directions=["minimize", "maximize"])
    dist = {"x": FloatDistribution(0, 1)}
    for x, values in enumerate([(0.01, 0.70), (0.02, 0.85), (0.05, 0.88), (0.03, 0.80)]):
        study.add_trial(create_trial(values=list(values), params={"x": x / 10}, distributions=dist))
    return study


@pytest.mark.parametrize(("rule", "expected"), [("recon", 0), ("probe", 2), ("knee", 1), (None, 1)])
def test_pareto_selection_rules(rule, expected):
    spec = load_study(write_study("sel", objective="multi", pruner="none"))
    trial, used = select_trial(spec, hand_made_front(), rule)
    assert trial.number == expected and used == (rule or "knee")


def test_rule_must_fit_the_objective(tiny_data, capsys):
    spec = load_study(write_study("one"))
    study = run_study(spec, 1, "sqlite:///o.db", data_dir=str(tiny_data), progress=False)
    with pytest.raises(AeclsError, match="rule can be recon"):
        select_trial(spec, study, "probe")
    assert main(["study", "best", "one.yaml", "--storage", "sqlite:///o.db", "--select", "knee"]) == 2
    assert "rule can be recon" in capsys.readouterr().err
    # the same study name with another objective on the same storage is refused, not mixed in
    write_study("one", objective="probe")
    with pytest.raises(AeclsError, match="objective changed"):
        open_study(load_study("one.yaml"), "sqlite:///o.db")
