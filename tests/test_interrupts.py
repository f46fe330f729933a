"""Ctrl-C and SIGTERM in `study run`: the running trials fail and are re-queued, one line, the shell's
exit code."""

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

from aecls.hpo.storage import make_storage
from tests.helpers import interruptible, write_study

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


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_ctrl_c_fails_and_requeues_the_running_trials(tiny_data, workers):
    path = write_study("tiny", epochs=5000)  # far longer than the test: interrupted mid-fit, never done
    storage = "sqlite:///optuna.db" if workers == 1 else "journal:optuna.journal"
    cmd = [sys.executable, "-m", "aecls.cli", "study", "run", str(path), "--n-trials", str(workers),
           "--data-dir", str(tiny_data), "--no-progress", "--workers", str(workers), "--storage", storage]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    # Output to files, not pipes: nothing reads a pipe while the test waits, and a full one would
    # block the process in a write, where no signal is handled.
    out, errf = open("stop.out", "w+"), open("stop.err", "w+")
    proc = subprocess.Popen(cmd, stdout=out, stderr=errf, text=True, env=env, preexec_fn=interruptible,
                            start_new_session=True)  # its own process group, as in a terminal
    deadline = time.time() + 300  # a slow, shared machine starts the fit late
    started = lambda: len(list(Path("lightning_logs/tiny").glob("trial_*/events.*")))  # noqa: E731
    while time.time() < deadline and started() < workers:
        time.sleep(0.5)
    time.sleep(2)  # into the fits
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C reaches the whole foreground group
    proc.wait(timeout=300)
    err = open("stop.err").read()
    assert proc.returncode == 130, err
    (line,) = [ln for ln in err.strip().splitlines() if ln.startswith("aecls")]
    assert line.startswith("aecls: interrupted (Ctrl-C): study tiny: trial 0 failed, re-queued as trial ")
    assert line.endswith("; `aecls study run` continues it") and line.count("re-queued") == workers, err
    study = optuna.load_study(study_name="tiny", storage=make_storage(storage))
    assert [t.state for t in study.trials] == [TrialState.FAIL] * workers + [TrialState.WAITING] * workers
    params = sorted(str(t.params) for t in study.trials[:workers])
    assert sorted(str(t.params) for t in study.trials[workers:]) == params  # the same configs again


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
