"""A researcher's first afternoon (issue #31): each defect found, on the command it was found with."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from aecls.cli import main
from aecls.modules import AutoEncoder
from aecls.modules.encoders import export_encoder
from aecls.nets import NetConfig
from tests.helpers import write_study

ENV = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}


def _terminate(cmd: list[str], ready) -> tuple[int, str]:
    """Start `cmd`, wait until `ready()`, send SIGTERM (as a scheduler does); (exit code, stderr)."""
    proc = subprocess.Popen([sys.executable, "-m", "aecls.cli", *cmd], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=ENV)
    deadline = time.time() + 300  # a slow, shared machine starts the fit late
    while time.time() < deadline and not ready() and proc.poll() is None:
        time.sleep(0.5)
    time.sleep(2)  # into the work
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=300)
    return proc.returncode, err


# -- 1: SIGTERM is not a success --------------------------------------------------------------------

# SIGTERM on a sweep: tests/test_sweep_resume.py (it keeps the finished runs, and continues).


@pytest.mark.slow
def test_sigterm_in_a_study_requeues_its_trial_as_ctrl_c_does(tiny_data):
    path = write_study("tiny", epochs=5000)
    started = lambda: bool(list(Path("lightning_logs/tiny").glob("trial_*/events.*")))  # noqa: E731
    code, err = _terminate(["study", "run", str(path), "--n-trials", "1", "--data-dir", str(tiny_data),
                            "--no-progress"], ready=started)
    assert code == 143, err
    (line,) = [ln for ln in err.strip().splitlines() if ln.startswith("aecls")]
    assert line.startswith("aecls: terminated (SIGTERM): study tiny: trial 0 failed, re-queued as trial 1")
    study = optuna.load_study(study_name="tiny", storage="sqlite:///optuna.db")
    assert [t.state for t in study.trials] == [TrialState.FAIL, TrialState.WAITING]


# -- 4: printed commands survive a space in a path --------------------------------------------------

def test_printed_commands_are_shell_quoted(tiny_data, capsys):
    import shlex

    folder = Path("my runs")
    folder.mkdir()
    path = write_study("spaced", epochs=1, n_trials=1)
    storage = f"sqlite:///{folder}/o.db"
    assert main(["study", "run", str(path), "--storage", storage, "--data-dir", str(tiny_data),
                 "--log-dir", "my logs", "--no-progress"]) == 0
    out = capsys.readouterr().out
    dashboard = next(ln for ln in out.splitlines() if ln.startswith("dashboard: "))
    tensorboard = next(ln for ln in out.splitlines() if ln.startswith("TensorBoard: "))
    assert shlex.split(dashboard.removeprefix("dashboard: "))[1:] == [
        storage, "--artifact-dir", str(folder / "o_artifacts")]
    assert shlex.split(tensorboard.removeprefix("TensorBoard: "))[1:] == ["--logdir", "my logs/spaced"]


# -- 2: a continued study's export says it is stale -------------------------------------------------

@pytest.mark.slow
def test_a_continued_study_says_its_export_is_stale(tiny_data, capsys):
    path = write_study("cont", epochs=1, n_trials=1, pruner="none")
    common = [str(path), "--data-dir", str(tiny_data)]
    assert main(["study", "run", *common, "--no-progress"]) == 0
    assert main(["study", "best", *common, "--seeds", "1"]) == 0
    capsys.readouterr()
    sweep = ["transfer", "sweep", "--encoder", "artifacts/cont", "--labels", "20", "--seeds", "1",
             "--methods", "logreg_pixels", "--data-dir", str(tiny_data), "--val-size", "50", "--no-progress"]
    assert main(sweep) == 0
    assert "warning" not in capsys.readouterr().err  # fresh: no word
    best = 0
    n = 1
    while best == 0 and n < 8:  # continue until another trial beats trial 0
        n += 1
        assert main(["study", "run", *common, "--n-trials", str(n), "--no-progress"]) == 0
        best = optuna.load_study(study_name="cont", storage="sqlite:///optuna.db").best_trial.number
    assert best != 0, "no trial beat trial 0 in 8"
    capsys.readouterr()
    assert main(sweep) == 0
    err = capsys.readouterr().err
    assert f"the exported encoder is trial 0's, but study cont has a better trial since ({best})" in err
    assert "`aecls study best cont`" in err


# -- 3: a study outside studies/ is found by its name ---------------------------------------------

def test_a_study_is_found_by_name_in_its_storage(tiny_data, capsys):
    Path("elsewhere").mkdir()
    path = write_study("walk", epochs=1, n_trials=1)
    path = path.rename(Path("elsewhere") / path.name)
    assert main(["study", "run", str(path), "--storage", "sqlite:///walk.db", "--data-dir", str(tiny_data),
                 "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["study", "plots", "walk", "--storage", "sqlite:///walk.db"]) == 0
    assert "trials: 1 complete" in capsys.readouterr().out
    assert main(["study", "plots", "nowhere", "--storage", "sqlite:///walk.db"]) == 2
    err = capsys.readouterr().err
    assert "tried nowhere, studies/nowhere.yaml" in err and "no study nowhere on sqlite:///walk.db" in err


# -- 6: one seed is not zero spread -----------------------------------------------------------------

def test_one_seed_shows_n_1_not_a_zero_spread():
    from aecls.stats import mean_sd, spread

    assert spread(0.01027, 0.0, 1) == "0.01027 (n = 1)"
    assert mean_sd([0.5, 0.7], scale=100) == "60.00 ± 10.00"
    assert mean_sd([0.723], scale=100) == "72.30 (n = 1)"


def test_study_best_with_one_seed_prints_no_spread(tiny_data, capsys):
    path = write_study("one", epochs=1, n_trials=1)
    assert main(["study", "run", str(path), "--data-dir", str(tiny_data), "--no-progress"]) == 0
    assert main(["study", "best", str(path), "--data-dir", str(tiny_data), "--seeds", "1"]) == 0
    out = capsys.readouterr().out
    assert "±" not in out.split("re-trained")[1] and "(n = 1)" in out


# -- 8: plots -------------------------------------------------------------------------------------

def test_whole_epochs_and_no_one_parameter_importance(tiny_data, capsys):
    from aecls.hpo.space import load_study
    from aecls.hpo.summary import study_outputs

    path = write_study("onep", epochs=3, n_trials=2, pruner="none",
                       space={"lr": {"type": "float", "low": 1e-3, "high": 1e-2}, "n_channels": 2})
    assert main(["study", "run", str(path), "--data-dir", str(tiny_data), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "importances: not plotted, one searched parameter (lr)" in out
    assert not Path("artifacts/onep/importances.png").exists()
    spec = load_study(path)
    study = optuna.load_study(study_name="onep", storage="sqlite:///optuna.db")
    import matplotlib.pyplot as plt

    seen = []
    real = plt.Figure.savefig

    def spy(fig, *a, **k):
        seen.append([t for ax in fig.axes for t in ax.get_xticks()])
        return real(fig, *a, **k)

    plt.Figure.savefig = spy
    try:
        study_outputs(spec, study, "again")
    finally:
        plt.Figure.savefig = real
    assert all(float(t).is_integer() for t in seen[-1])  # val_curves.png: whole epochs only


# -- 5: a VAE's costly test says so first -----------------------------------------------------------

def test_a_vae_test_says_its_cost_before_it_starts(tiny_data, capsys):
    from tests.helpers import fit

    assert fit(tiny_data, "vae.yaml", "--trainer.max_epochs", "1", "--model.init_args.nll_samples", "3") == 0
    out = capsys.readouterr().out
    said = out.index("aecls: test/nll: 3 importance samples per test image")
    assert said < out.index("test/nll ")  # before the metric it is about
    assert "nll_samples sets it" in out


# -- 9: a sweep without its bar still says how it goes ----------------------------------------------

def test_a_sweep_without_progress_bar_prints_a_line_per_run(tiny_data, tmp_path, capsys):
    ae = AutoEncoder(NetConfig(latent_dim=8, n_channels=4, hidden=0))
    enc = export_encoder(tmp_path / "enc.pt", ae.encoder, ae.net_cfg, "cae")
    assert main(["transfer", "sweep", "--encoder", str(enc), "--labels", "20", "--seeds", "2",
                 "--methods", "logreg_pixels", "--data-dir", str(tiny_data), "--val-size", "50",
                 "--no-progress"]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("run ")]
    assert [ln.split(":")[0] for ln in lines] == ["run 1/2", "run 2/2"]
    assert "20 labels, seed 1, logreg_pixels: test accuracy" in lines[1]
