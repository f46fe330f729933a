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
from aecls.encoders import export_encoder
from aecls.modules import AutoEncoder
from aecls.nets import NetConfig
from tests.helpers import write_study

ENV = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}


def _terminate(cmd: list[str], ready) -> tuple[int, str]:
    """Start `cmd`, wait until `ready()`, send SIGTERM (as a scheduler does); (exit code, stderr)."""
    proc = subprocess.Popen([sys.executable, "-m", "aecls.cli", *cmd], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=ENV)
    deadline = time.time() + 120
    while time.time() < deadline and not ready() and proc.poll() is None:
        time.sleep(0.5)
    time.sleep(2)  # into the work
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err


# -- 1: SIGTERM is not a success --------------------------------------------------------------------

@pytest.mark.slow
def test_sigterm_stops_a_sweep_with_one_line_and_143(tiny_data, tmp_path):
    ae = AutoEncoder(NetConfig(latent_dim=8, n_channels=4, hidden=0))
    enc = export_encoder(tmp_path / "enc.pt", ae.encoder, ae.net_cfg, "cae")
    code, err = _terminate(["transfer", "sweep", "--encoder", str(enc), "--labels", "20", "--seeds", "1",
                            "--methods", "finetune", "--min-steps", "1000000", "--data-dir", str(tiny_data),
                            "--val-size", "50", "--out", "sw", "--no-progress"], ready=lambda: True)
    assert code == 143, err
    assert "Traceback" not in err, err
    (line,) = [ln for ln in err.strip().splitlines() if ln.startswith("aecls")]
    assert line == "aecls: transfer sweep terminated (SIGTERM)"
    assert not Path("sw/sweep.csv").exists()


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
