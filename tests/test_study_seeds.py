"""Studies that reproduce: seeded trials, no replayed configs, checked study files, dashboard."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from aecls.cli import main
from aecls.core.paths import REPO_CONFIGS
from aecls.hpo.best import rerun_best
from aecls.hpo.objective import trial_module
from aecls.hpo.run import open_study, run_study
from aecls.hpo.sampler import derive_seed, rerun_seeds, trial_seed
from aecls.hpo.space import load_study
from aecls.hpo.storage import dashboard_command
from aecls.nets import NetConfig
from tests.helpers import SPACE, finished, write_study


def test_seeds_are_derived_not_summed():
    assert derive_seed(0, 1) != derive_seed(1, 0)
    assert trial_seed(0, 3) == trial_seed(0, 3) != trial_seed(0, 4)
    assert trial_seed(1, 3) != trial_seed(0, 3)
    seeds = rerun_seeds(trial_seed(0, 3), 3)
    assert seeds[0] == trial_seed(0, 3) and len(set(seeds)) == 3


def test_a_trial_rerun_with_its_seed_reproduces_its_val_loss(tiny_data):
    spec = load_study(write_study("repro", epochs=2))
    study = run_study(spec, 2, "sqlite:///r.db", data_dir=str(tiny_data), progress=False)
    for t in finished(study):
        assert t.user_attrs["seed"] == trial_seed(spec.seed, t.number)
    info = rerun_best(spec, study, seeds=2, data_dir=str(tiny_data))
    best = study.best_trial
    assert info.trial_seed == best.user_attrs["seed"] == info.runs[0]["seed"]
    assert info.runs[1]["seed"] != info.runs[0]["seed"]
    rep = info.reproduced
    assert rep["trial"] == best.value and rep["rerun"] == best.value and rep["identical"]
    # the second seed is a different fit: its score differs (so the equality above is not vacuous)
    assert info.runs[1]["val_score"] != best.value


def test_continued_study_and_second_command_draw_no_repeated_configs(tiny_data):
    spec = load_study(write_study("replay", epochs=1))
    run_study(spec, 3, "sqlite:///a.db", data_dir=str(tiny_data), progress=False)
    study = run_study(spec, 6, "sqlite:///a.db", data_dir=str(tiny_data), progress=False)  # continued
    drawn = [json.dumps(t.params, sort_keys=True) for t in study.trials]
    assert len(drawn) == 6 and len(set(drawn)) == 6
    # ... while a fresh study from the same file draws the same configs again, in the same order
    fresh = run_study(spec, 3, "sqlite:///b.db", data_dir=str(tiny_data), progress=False)
    assert [t.params for t in fresh.trials] == [t.params for t in study.trials[:3]]


def test_changed_study_file_is_refused_unless_allowed(tiny_data, capsys):
    path = write_study("changed", epochs=1)
    common = ["study", "run", str(path), "--storage", "sqlite:///c.db", "--data-dir", str(tiny_data),
              "--no-progress"]
    assert main([*common, "--n-trials", "1"]) == 0
    write_study("changed", epochs=2)
    assert main([*common, "--n-trials", "2"]) == 2
    err = capsys.readouterr().err
    assert "created from a different study file (epochs changed)" in err and "--allow-changes" in err
    assert main([*common, "--n-trials", "2", "--allow-changes"]) == 0
    assert main([*common, "--n-trials", "3"]) == 0  # the study now records the new file


@pytest.mark.parametrize(("change", "message"), [
    ({"epoch": 3}, "unknown key(s) ['epoch']"),
    ({"sampler_seed": 3}, "unknown key(s) ['sampler_seed']"),
    ({"space": {**SPACE, "lr": {"type": "float", "low": 1e-3, "high": 1e-2, "stpe": 1e-3}}},
     "search-space entry lr: unknown key(s) ['stpe'] for type float"),
    ({"space": {**SPACE, "latent_dim": {"type": "int", "low": 8, "high": 2}}},
     "search-space entry latent_dim"),
    ({"space": {**SPACE, "lr": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True, "step": 1e-3}}},
     "search-space entry lr"),
    ({"space": {**SPACE, "n_channels": {"type": "categorical", "choices": []}}},
     "choices must be a non-empty"),
    ({"space": {**SPACE, "n_channels": 0}}, "net.n_channels must be >= 1"),
    ({"trainer": {"gpus": 2}}, "unknown trainer keys ['gpus']"),
    ({"trainer": {"devices": 2, "strategy": "ddp"}}, "once per device; a study's trials use ddp_spawn"),
    ({"config": "nope.yaml"}, "model config not found: nope.yaml"),
    ({"model": "vae", "config": str(REPO_CONFIGS / "cae.yaml")}, "not VAE"),
])
def test_study_file_errors_name_the_key(tiny_data, capsys, change, message):
    path = write_study("bad", **change)
    assert main(["study", "run", str(path), "--storage", "sqlite:///x.db", "--data-dir", str(tiny_data),
                 "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_ddp_study_on_a_journal_is_refused(tiny_data, capsys):
    path = write_study("ddpj", trainer={"devices": 2, "strategy": "ddp_spawn", "accelerator": "cpu"})
    assert main(["study", "run", str(path), "--storage", "journal:j.journal", "--data-dir", str(tiny_data),
                 "--no-progress"]) == 2
    assert "needs an RDB storage" in capsys.readouterr().err


def test_step_entries_are_used(tiny_data):
    space = {**SPACE, "latent_dim": {"type": "int", "low": 2, "high": 8, "step": 3}}
    spec = load_study(write_study("step", epochs=1, space=space))
    study = run_study(spec, 3, "sqlite:///s.db", data_dir=str(tiny_data), progress=False)
    assert {t.params["latent_dim"] for t in study.trials} <= {2, 5, 8}


def test_study_model_has_the_config_defaults():
    """A study that leaves batch_norm/scheduler out trains what `aecls fit --config configs/cae.yaml`
    trains, with the drawn parameters on top."""
    spec = load_study(write_study("defaults", space={"latent_dim": 5}))
    cfg = yaml.safe_load((REPO_CONFIGS / "cae.yaml").read_text())["model"]["init_args"]
    module = trial_module(spec, spec.suggest(optuna.trial.FixedTrial({})))
    assert module.net_cfg == NetConfig(**{**cfg["net"], "latent_dim": 5})
    assert module.net_cfg.batch_norm and module.optim.scheduler == cfg["optim"]["scheduler"] == "onecycle"
    assert spec.data["val_size"] == 50 and spec.data["batch_size"] == 64  # the study's own data wins
    assert spec.trainer == {"devices": 1}


def test_dashboard_names_metrics_shows_pruned_grids_and_hides_passwords(tiny_data):
    # ThresholdPruner(upper=0): every trial is pruned after its first epoch
    spec = load_study(write_study("dash", epochs=3, pruner="threshold", pruner_args={"upper": 0.0}))
    study = run_study(spec, 2, "sqlite:///d.db", data_dir=str(tiny_data), progress=False, artifacts="shared")
    assert study.metric_names == ["val/clean_mse"]  # the CAE's score, named in the dashboard
    trials = finished(study)
    assert [t.state for t in trials] == [TrialState.PRUNED] * 2
    assert all(t.user_attrs["epochs_run"] == 1 for t in trials)
    for t in trials:
        (meta,) = optuna.artifacts.get_all_artifact_meta(t, storage=study._storage)
        assert meta.filename == "reconstructions.png"
    assert list(Path("shared").iterdir())  # the store is where --artifacts said
    args = dashboard_command("postgresql://aecls:s3cret@db.example/aecls", "shared")
    assert "s3cret" not in args and "aecls:***@db.example" in args
    assert f"--artifact-dir {Path('shared').resolve()}" in args


def test_open_study_records_its_file():
    spec = load_study(write_study("rec"))
    study = open_study(spec, "sqlite:///o.db")
    assert study.user_attrs["spec"]["epochs"] == 2 and study.user_attrs["spec"]["space"]["hidden"] == 16


@pytest.mark.slow
def test_a_worker_trial_is_reproduced_with_its_thread_count(tiny_data):
    """Workers split the cores (here 1 thread each); the re-run of the best trial uses the trial's
    recorded thread count for its own seed, then this process's for the others."""
    import torch

    spec = load_study(write_study("threads", epochs=2))
    study = run_study(spec, 2, "journal:t.journal", workers=2, data_dir=str(tiny_data), progress=False)
    best = study.best_trial
    assert best.user_attrs["threads"] == max(1, (__import__("os").cpu_count() or 1) // 2)
    before = torch.get_num_threads()
    info = rerun_best(spec, study, seeds=2, data_dir=str(tiny_data))
    assert info.runs[0]["threads"] == best.user_attrs["threads"] and info.reproduced["identical"]
    assert info.runs[1]["threads"] == before == torch.get_num_threads()


def test_the_sampler_keeps_tpes_search_space_and_draws_the_same():
    """TrialSeededTPESampler carries TPE's incrementally kept search space from trial to trial (a
    fresh one rescanned every trial: half the sampler's time at thousands of trials). It must draw
    exactly what a sampler rebuilding TPE for every trial draws (written here on Optuna's public
    sampler interface)."""
    from optuna.samplers import BaseSampler, TPESampler

    from aecls.hpo.sampler import SAMPLER_STREAM, TrialSeededTPESampler, derive_seed

    class Rebuilding(BaseSampler):
        def __init__(self, seed, **kwargs):
            self.seed, self.kwargs, self.tpe = seed, kwargs, None

        def before_trial(self, study, trial):
            self.tpe = TPESampler(seed=derive_seed(self.seed, SAMPLER_STREAM, trial.number), **self.kwargs)
            self.tpe.before_trial(study, trial)

        def infer_relative_search_space(self, study, trial):
            return self.tpe.infer_relative_search_space(study, trial)

        def sample_relative(self, study, trial, search_space):
            return self.tpe.sample_relative(study, trial, search_space)

        def sample_independent(self, study, trial, name, distribution):
            return self.tpe.sample_independent(study, trial, name, distribution)

        def after_trial(self, study, trial, state, values):
            self.tpe.after_trial(study, trial, state, values)

    def draws(sampler):
        study = optuna.create_study(sampler=sampler)
        study.optimize(lambda t: t.suggest_float("x", 1e-3, 1, log=True) + t.suggest_int("n", 1, 9)
                       + (t.suggest_categorical("c", ["a", "b"]) == "a"), n_trials=40)
        return [t.params for t in study.trials]

    assert draws(TrialSeededTPESampler(3, constant_liar=True)) == draws(Rebuilding(3, constant_liar=True))


def test_sampler_args_reach_tpe_and_leave_the_default_alone():
    """A study file's sampler_args reach TPE: with n_startup_trials 2 its third trial is drawn by
    TPE, where the default's (10 random trials first) is still random; the first two agree."""
    def params(spec):
        study = open_study(spec, "sqlite:///s.db")
        study.optimize(lambda t: sum(v for v in spec.suggest(t).values() if isinstance(v, (int, float))),
                       n_trials=4)
        return [t.params for t in study.trials]

    plain = params(load_study(write_study("plain")))
    tuned = params(load_study(write_study("tuned", sampler_args={"n_startup_trials": 2})))
    assert plain[:2] == tuned[:2] and plain[2:] != tuned[2:]
