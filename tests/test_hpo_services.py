"""Studies against real services: PostgreSQL (heartbeats, a killed worker) and optuna-dashboard."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import optuna
import pytest
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState

from aecls.hpo.run import run_study
from aecls.hpo.space import load_study
from tests.helpers import finished, join_together, write_study
from tests.services import free_port

pytestmark = [pytest.mark.services, pytest.mark.slow]

FAST_HEARTBEAT = {"heartbeat_s": 1, "grace_s": 3}


def test_postgresql_study(tiny_data, postgres_url):
    spec = load_study(write_study("pg"))
    study = run_study(spec, 2, postgres_url, data_dir=str(tiny_data), progress=False)
    assert len(finished(study)) == 2 and study.best_value > 0
    again = run_study(spec, 3, postgres_url, data_dir=str(tiny_data), progress=False)
    assert len(finished(again)) == 3


WORKER = """
import sys
from aecls.hpo.run import run_study
from aecls.hpo.space import load_study
spec = load_study(sys.argv[1])
run_study(spec, 1, sys.argv[2], data_dir=sys.argv[3], progress=False, heartbeat_s=1, grace_s=3)
"""


def test_killed_worker_trial_fails_and_is_retried(tiny_data, postgres_url):
    long = load_study(write_study("killed", epochs=500))  # far longer than the test waits
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    worker = subprocess.Popen([sys.executable, "-c", WORKER, "killed.yaml", postgres_url, str(tiny_data)],
                              env=env, start_new_session=True)
    from aecls.hpo.run import open_study

    study = open_study(long, postgres_url, **FAST_HEARTBEAT)
    deadline = time.time() + 120
    while not study.get_trials(states=(TrialState.RUNNING,)) and time.time() < deadline:
        time.sleep(0.5)
    assert study.get_trials(states=(TrialState.RUNNING,)), "worker never started its trial"
    time.sleep(2)  # a few epochs in, heartbeats recorded
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait()
    time.sleep(4)  # > grace period: the trial is now stale
    short = load_study(write_study("killed", epochs=1))  # same study name, a quick re-run
    study = run_study(short, 1, postgres_url, data_dir=str(tiny_data), progress=False, allow_changes=True,
                      **FAST_HEARTBEAT)
    states = [t.state for t in study.trials]
    assert states.count(TrialState.FAIL) == 1 and states.count(TrialState.COMPLETE) == 1
    retried = next(t for t in study.trials if t.state == TrialState.COMPLETE)
    failed = next(t for t in study.trials if t.state == TrialState.FAIL)
    assert RetryHeartbeatStaleTrialCallback.retried_trial_number(retried) == failed.number
    assert retried.params == failed.params  # the same config was re-run, nothing lost


def test_dashboard_serves_the_study(tiny_data):
    spec = load_study(write_study("dash", epochs=1))
    run_study(spec, 1, "sqlite:///d.db", data_dir=str(tiny_data), progress=False)
    port = free_port()
    exe = Path(sys.executable).with_name("optuna-dashboard")
    proc = subprocess.Popen([str(exe), "sqlite:///d.db", "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        body, deadline = None, time.time() + 60
        while body is None and time.time() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=2) as r:
                    body = json.loads(r.read())
            except OSError:
                time.sleep(0.5)
        assert body is not None, "optuna-dashboard did not answer"
        assert "dash" in [s["study_name"] for s in body["study_summaries"]]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_server_study_no_password_and_no_mixing(tiny_data, postgres_url, capsys):
    """Issue #20 items 6-8 on a real server: the password (trust auth takes any) never shows, a
    reading command creates no study there, and a same-named SQLite study keeps out of its folders."""
    from aecls.cli import main

    url = postgres_url.replace("postgres@", "postgres:s3cret@")
    path = str(write_study("srv", epochs=1))
    assert main(["study", "best", path, "--storage", url]) == 2  # no such study yet
    err = capsys.readouterr().err
    assert "no study srv on" in err and "s3cret" not in err and "postgres:***@" in err
    assert "srv" not in optuna.get_all_study_names(postgres_url)
    assert main(["study", "run", path, "--storage", url, "--n-trials", "1", "--data-dir", str(tiny_data),
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "s3cret" not in out and "postgres:***@" in out  # the dashboard command
    assert main(["study", "run", path, "--n-trials", "1", "--data-dir", str(tiny_data), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "lightning_logs/srv holds study srv of storage postgresql://postgres@127.0.0.1" in err
    assert "s3cret" not in err


def test_processes_started_together_all_join_a_new_postgresql_study(postgres_url):
    """Issue #22: 8 processes started at once on an empty PostgreSQL database all join the study
    (before: 1 of 8, the others UniqueViolation while creating Optuna's schema)."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as c:
        c.execute(sqlalchemy.text("DROP DATABASE IF EXISTS race"))
        c.execute(sqlalchemy.text("CREATE DATABASE race"))
    engine.dispose()
    url = postgres_url.rsplit("/", 1)[0] + "/race"
    results = join_together(url, str(write_study("race").resolve()))
    assert [r for r in results if r[0] != "ok"] == []
    assert len({r[1] for r in results}) == 1
