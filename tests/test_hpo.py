"""Optuna studies on tiny synthetic data: storages, workers, pruning, resume, best-trial export."""

from __future__ import annotations

import json
import math
from pathlib import Path

import optuna
import pytest
import torch
from optuna.trial import TrialState

from aecls.cli import main
from aecls.core.errors import AeclsError
from aecls.hpo.best import rerun_best
from aecls.hpo.run import open_study, run_study
from aecls.hpo.space import load_study
from aecls.hpo.summary import epoch_curve, summary
from aecls.modules.encoders import load_encoder
from tests.helpers import SPACE, finished, write_study


def test_two_trial_sqlite_study_and_resume(tiny_data):
    spec = load_study(write_study())
    study = run_study(spec, 2, "sqlite:///s.db", data_dir=str(tiny_data), progress=False)
    assert len(finished(study)) == 2
    t = study.best_trial
    assert Path(t.user_attrs["checkpoint"]).is_file() and t.user_attrs["epochs_run"] == 2
    assert set(t.params) == {"latent_dim", "n_channels", "optimizer", "lr"}
    assert Path(f"lightning_logs/tiny/trial_{t.number}").is_dir()
    # the reconstruction grid is an Optuna artifact of the trial
    (meta,) = optuna.artifacts.get_all_artifact_meta(t, storage=study._storage)
    assert meta.filename == "reconstructions.png" and list(Path("s_artifacts").iterdir())
    again = run_study(spec, 3, "sqlite:///s.db", data_dir=str(tiny_data), progress=False)
    assert len(finished(again)) == 3  # continued: one more trial, not three


def test_nan_trial_is_pruned_and_the_study_goes_on(tiny_data):
    # lr 1e6 blows the loss up to NaN/inf on the first epoch
    spec = load_study(write_study("nan", space={**SPACE, "lr": {"type": "categorical",
                                                                  "choices": [1.0e6, 1.0e-3]}}))
    study = run_study(spec, 4, "sqlite:///n.db", data_dir=str(tiny_data), progress=False)
    states = {t.params["lr"]: t.state for t in finished(study)}
    assert states.get(1.0e6) == TrialState.PRUNED and states.get(1.0e-3) == TrialState.COMPLETE
    assert len(finished(study)) == 4


def test_median_pruner_prunes_bad_trials(tiny_data):
    space = {**SPACE, "lr": {"type": "categorical", "choices": [3e-3, 1e-6]}}
    spec = load_study(write_study("prune", epochs=4, space=space, seed=1))
    study = run_study(spec, 8, "sqlite:///p.db", data_dir=str(tiny_data), progress=False)
    pruned = [t for t in finished(study) if t.state == TrialState.PRUNED]
    assert pruned and any(t.user_attrs["epochs_run"] < 4 for t in pruned)
    assert all(t.user_attrs["epochs_run"] == len(t.intermediate_values) for t in finished(study))
    s = summary(spec, study)
    assert s["epochs_run"] < s["epochs_unpruned"] and s["pruning_saved"] > 0
    # issue #40, 6: val_curves.png numbers epochs as Optuna's reports (and its pruning log) do
    for t in finished(study):
        if t.state == TrialState.COMPLETE:
            epochs, values = epoch_curve(t, spec.metrics[0])
            assert epochs == sorted(t.intermediate_values) == [0, 1, 2, 3]
            assert values == [t.intermediate_values[e] for e in epochs]


def test_summary_says_failed_trials_were_re_queued():
    """Issue #40, 6: after a Ctrl-C the failed trials were re-queued: the summary says so."""
    from optuna.storages import RetryHeartbeatStaleTrialCallback

    from aecls.hpo.summary import format_summary

    spec = load_study(write_study("rq"))
    study = optuna.create_study(study_name="rq")
    for _ in range(2):
        trial = study.ask()
        study.tell(trial, state=TrialState.FAIL)
        RetryHeartbeatStaleTrialCallback(max_retry=3)(study, study.trials[trial.number])
    study.tell(study.ask(), state=TrialState.FAIL)  # one that nothing re-queued
    s = summary(spec, study)
    assert s["failed"] == 3 and s["requeued"] == 2
    assert "3 failed (2 of them re-queued)" in format_summary(s)


@pytest.mark.slow
def test_journal_two_workers_run_exactly_n_trials(tiny_data):
    spec = load_study(write_study("par", epochs=1))
    study = run_study(spec, 5, "journal:par.journal", workers=2, data_dir=str(tiny_data), progress=False)
    trials = study.get_trials(deepcopy=False)
    assert len(finished(study)) == 5 and len(trials) == 5
    assert sorted(t.number for t in trials) == list(range(5))
    # each worker has its own sampler seed: the two first trials are not the same config
    assert trials[0].params != trials[1].params


def test_rerun_best_exports_a_loadable_encoder(tiny_data):
    spec = load_study(write_study("best"))
    study = run_study(spec, 2, "sqlite:///b.db", data_dir=str(tiny_data), progress=False)
    info = rerun_best(spec, study, seeds=2, data_dir=str(tiny_data))
    saved = json.loads(Path("artifacts/best/best.json").read_text())
    assert saved["trial"] == study.best_trial.number and len(saved["runs"]) == 2
    assert saved["params"]["hidden"] == 16 and saved["test"]["test/mse"]["sd"] >= 0
    encoder, net, kind = load_encoder("artifacts/best")
    assert kind == "cae" and net.hidden == 16
    from aecls.training.checkpoints import load_module

    module, _ = load_module(info.encoder["checkpoint"])
    x = torch.rand(4, 1, 28, 28)
    encoder.eval(), module.eval()  # BatchNorm (the cae config has it): running statistics
    assert torch.equal(encoder(x), module.encoder(x))  # the exported encoder is the tested one
    chosen = next(r for r in saved["runs"] if r["seed"] == info.encoder["seed"])
    from aecls.training.train import evaluate_checkpoint

    again = evaluate_checkpoint(info.encoder["checkpoint"], str(tiny_data), "cpu", baselines=False)
    assert math.isclose(again["test/mse"], chosen["test"]["test/mse"], rel_tol=1e-5)


def test_cli_run_best_plots(tiny_data, capsys):
    path = str(write_study("cli"))
    common = [path, "--storage", "sqlite:///c.db", "--data-dir", str(tiny_data)]
    assert main(["study", "run", *common, "--n-trials", "2", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "trials: 2 complete" in out and "optuna-dashboard" in out
    for png in ("history", "parallel_coordinates", "importances", "val_curves"):
        assert Path(f"artifacts/cli/{png}.png").stat().st_size > 1000
    # the study's summary names its best trial (what the stale-export check reads)
    best = optuna.load_study(study_name="cli", storage="sqlite:///c.db").best_trial.number
    assert json.loads(Path("artifacts/cli/study.json").read_text())["best_trial"] == best
    assert main(["study", "best", *common, "--seeds", "1"]) == 0
    assert Path("artifacts/cli/best_encoder.pt").is_file()
    capsys.readouterr()
    assert main(["study", "best", *common, "--seeds", "1", "--nll-samples", "2"]) == 2
    err = capsys.readouterr().err
    assert "nll_samples: AutoEncoder has no such test setting (its test settings: none)" in err


def test_vae_study_best_says_the_test_cost_once_and_takes_fewer_samples(tiny_data, capsys):
    """Issue #40, 5: `study best` on a VAE study says what its NLL test costs, as `aecls test`
    does, and `--nll-samples` lowers it for the test only (recorded in best.json)."""
    path = str(write_study("vae1", epochs=1, model="vae", n_trials=1,
                                space={**SPACE, "kl_warmup_epochs": 0}))
    common = [path, "--storage", "sqlite:///v.db", "--data-dir", str(tiny_data)]
    assert main(["study", "run", *common, "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["study", "best", *common, "--seeds", "2", "--nll-samples", "3"]) == 0
    out = capsys.readouterr().out
    assert out.count("aecls: test/nll: 3 importance samples per test image") == 1, out
    best = json.loads(Path("artifacts/vae1/best.json").read_text())
    assert best["test_settings"] == {"nll_samples": 3} and "nll_samples" not in best["params"]
    ckpt = best["encoder"]["checkpoint"]
    assert main(["test", "--ckpt", ckpt, "--data-dir", str(tiny_data), "--nll-samples", "2",
                 "--no-baselines"]) == 0
    assert "aecls: test/nll: 2 importance samples" in capsys.readouterr().out


@pytest.mark.parametrize(("change", "message"), [
    ({"model": "gan"}, "unknown model family"),
    ({"space": {"depth": 3}}, "unknown search-space names"),
    ({"space": {"lr": {"type": "gauss"}}}, "type must be int, float or categorical"),
    ({"objective": "accuracy"}, "objective must be one of"),
    ({"objective": "multi"}, "cannot prune multi-objective trials"),
    ({"pruner_args": {"n_warmup": 1}}, "do not fit the median pruner"),
    ({"sampler_args": {"n_ei_candidate": 8}}, "do not fit Optuna's TPESampler"),
    ({"sampler_args": {"seed": 1}}, "sampler_args cannot set TPE's seed"),
    ({"sampler_args": [1]}, "`sampler_args:` must be a mapping"),
])
def test_bad_study_files(tiny_data, capsys, change, message):
    path = write_study("bad", **change)
    assert main(["study", "run", str(path), "--storage", "sqlite:///x.db", "--data-dir", str(tiny_data),
                 "--no-progress"]) == 2
    assert message in capsys.readouterr().err


def test_missing_study_and_no_best(capsys):
    assert main(["study", "run", "nope.yaml"]) == 2
    assert "study file not found" in capsys.readouterr().err
    spec = load_study(write_study("empty"))
    with pytest.raises(AeclsError, match="no completed trial"):
        rerun_best(spec, open_study(spec, "sqlite:///e.db"))
