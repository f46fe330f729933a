"""Studies that survive: supervised workers (kill -9 of one, a user error in one), a crashed
launcher's trial recovered on continue, and how workers share GPUs and cores."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState

from aecls.cli import main
from aecls.hpo.run import WORKER_ATTR, open_study, run_study, visible_gpus, worker_plan
from aecls.hpo.space import load_study
from tests.helpers import finished, join_together, write_study

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}
# Long enough (seconds on the tiny data) that a trial is still running when it is killed.
LONG = {"epochs": 15, "pruner": "none", "space": {"n_channels": 2, "hidden": 16,
                                                  "latent_dim": {"type": "int", "low": 2, "high": 8},
                                                  "lr": {"type": "float", "low": 1e-3, "high": 1e-2,
                                                         "log": True}}}


def test_several_workers_on_sqlite_are_warned_about(tmp_path, capsys):
    from aecls.core.errors import AeclsError

    spec = load_study(write_study("sq"))
    with pytest.raises(AeclsError):  # no data there: it stops right after the warning
        run_study(spec, 2, "sqlite:///sq.db", workers=2, data_dir=str(tmp_path / "none"), progress=False)
    err = capsys.readouterr().err
    assert "aecls: warning: 2 workers share sqlite:///sq.db, and SQLite queues its writers" in err
    assert "journal:FILE" in err
    with pytest.raises(AeclsError):
        run_study(spec, 2, "sqlite:///sq.db", workers=1, data_dir=str(tmp_path / "none"), progress=False)
    assert "warning" not in capsys.readouterr().err


def test_worker_plan_assigns_gpus_round_robin_and_splits_cores():
    plans = [worker_plan(i, 3, ["0", "1"], cpus=16) for i in range(3)]
    assert [p.env["CUDA_VISIBLE_DEVICES"] for p in plans] == ["0", "1", "0"]
    assert all(p.threads == 5 for p in plans)
    assert worker_plan(1, 2, ["4", "7"], cpus=2).env == {"CUDA_VISIBLE_DEVICES": "7"}  # the ids it was given
    assert worker_plan(0, 2, [], cpus=2).env == {} and worker_plan(0, 4, [], cpus=2).threads == 1
    # a 2-device (DDP) trial per worker: worker i takes GPUs 2i, 2i+1 (mod G)
    assert [worker_plan(i, 2, ["0", "1", "2", "3"], 8, devices=2).env["CUDA_VISIBLE_DEVICES"]
            for i in range(2)] == ["0,1", "2,3"]


def test_visible_gpus_follows_cuda_visible_devices(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2, 5")
    assert visible_gpus() == ["2", "5"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert visible_gpus() == []


def _kill_a_running_worker(study, proc: subprocess.Popen) -> int:
    """SIGKILL the worker process of a trial that is RUNNING; its trial number."""
    deadline = time.time() + 180
    while time.time() < deadline:
        assert proc.poll() is None, proc.communicate()
        running = [t for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
                   if t.user_attrs.get(WORKER_ATTR) and t.user_attrs.get("seed") is not None]
        if running:
            t = running[0]
            time.sleep(0.5)  # an epoch or so into it
            os.kill(int(t.user_attrs[WORKER_ATTR].rpartition(":")[2]), signal.SIGKILL)
            return t.number
        time.sleep(0.2)
    raise AssertionError("no trial started")


@pytest.mark.slow
@pytest.mark.parametrize("storage", ["journal:k.journal", "sqlite:///k.db"])
def test_killed_worker_trial_is_failed_and_rerun_and_the_study_ends_with_n(tiny_data, storage):
    path = write_study("killed", **LONG)
    n = 3
    proc = subprocess.Popen([sys.executable, "-m", "aecls.cli", "study", "run", str(path),
                             "--storage", storage, "--data-dir", str(tiny_data), "--workers", "2",
                             "--n-trials", str(n), "--no-progress"],
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    study = open_study(load_study(path), storage)
    killed = _kill_a_running_worker(study, proc)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert "Traceback" not in err and f"trial {killed} failed, re-queued as trial" in err
    trials = study.get_trials(deepcopy=False)
    assert len(finished(study)) == n
    (failed,) = [t for t in trials if t.state == TrialState.FAIL]
    assert failed.number == killed
    (retry,) = [t for t in trials if RetryHeartbeatStaleTrialCallback.retried_trial_number(t) == killed]
    assert retry.state == TrialState.COMPLETE and retry.params == failed.params
    assert retry.user_attrs["seed"] == failed.user_attrs["seed"]  # the very same fit, re-run


WORKER = """
import sys
from aecls.hpo.run import run_study
from aecls.hpo.space import load_study
run_study(load_study(sys.argv[1]), 2, sys.argv[2], data_dir=sys.argv[3], progress=False)
"""


@pytest.mark.slow
def test_a_crashed_launchers_running_trial_is_recovered_on_continue(tiny_data):
    """Journal storages have no heartbeat: the trial of a killed single-process run stayed RUNNING
    for ever; continuing the study now fails it and re-runs its config."""
    path = write_study("crashed", **LONG)
    storage = "journal:c.journal"
    proc = subprocess.Popen([sys.executable, "-c", WORKER, str(path), storage, str(tiny_data)], env=ENV)
    study = open_study(load_study(path), storage)
    killed = _kill_a_running_worker(study, proc)
    proc.wait()
    study = run_study(load_study(path), 2, storage, data_dir=str(tiny_data), progress=False)
    states = {t.number: t.state for t in study.trials}
    assert states[killed] == TrialState.FAIL and len(finished(study)) == 2
    retry = next(t for t in study.trials
                 if RetryHeartbeatStaleTrialCallback.retried_trial_number(t) == killed)
    assert retry.state == TrialState.COMPLETE


@pytest.mark.slow
def test_a_user_error_in_a_worker_is_one_line_and_exit_2(tiny_data, capsys):
    """A value only a trial can find bad (a label budget above the data's images: the study file's
    check reads no data): raised in the worker processes, shown as the CLI shows it without
    workers."""
    path = write_study("usererr", data={"val_size": 50, "batch_size": 64, "n_labels": 100_000})
    said = ("aecls: error: label budget 100000 is more than the 350 images of the training split; use a "
            "smaller n_labels (or all labels)")
    common = ["study", "run", str(path), "--data-dir", str(tiny_data), "--no-progress"]
    # Without workers (in this process: the CLI's own handling) ...
    assert main([*common, "--storage", "journal:u1.journal", "--log-dir", "logs1", "--out", "out1"]) == 2
    assert capsys.readouterr().err.strip() == said
    # ... and raised in two worker processes, the same one line (another storage, its own outputs).
    r = subprocess.run([sys.executable, "-m", "aecls.cli", *common, "--storage", "journal:u2.journal",
                        "--workers", "2", "--log-dir", "logs2", "--out", "out2"],
                       env=ENV, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    lines = [line for line in r.stderr.splitlines() if not line.startswith("[I ")]  # Optuna's info log
    assert lines == [said]


def test_a_bad_data_dir_fails_before_any_worker_starts(tmp_path, capsys):
    from aecls.cli import main

    path = write_study("nodata")
    assert main(["study", "run", str(path), "--storage", "journal:n.journal", "--workers", "2",
                 "--data-dir", str(tmp_path / "missing"), "--no-progress"]) == 2
    assert "IDX files not found" in capsys.readouterr().err


def test_a_single_worker_run_records_its_worker(tiny_data):
    spec = load_study(write_study("me", epochs=1))
    study = run_study(spec, 1, "journal:m.journal", data_dir=str(tiny_data), progress=False)
    assert study.trials[0].user_attrs[WORKER_ATTR].endswith(f":{os.getpid()}")


@pytest.mark.slow
def test_processes_started_together_all_join_a_new_sqlite_study():
    """Issue #22: 8 processes on a new SQLite file at once all open the one study (Optuna's schema
    creation races; the losers retry and load it)."""
    results = join_together("sqlite:///race.db", str(write_study("race").resolve()))
    assert [r for r in results if r[0] != "ok"] == []
    assert len({r[1] for r in results}) == 1
