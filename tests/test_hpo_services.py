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

from aecls.core.errors import AeclsError
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
from aecls.core.errors import AeclsError
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


HOST = """
import sys
from aecls.core.errors import AeclsError
from aecls.hpo.run import run_study
from aecls.hpo.space import load_study
spec = load_study(sys.argv[1])
run_study(spec, int(sys.argv[4]), sys.argv[2], data_dir=sys.argv[3], progress=False, heartbeat_s=1, grace_s=3,
          log_dir=sys.argv[5])
"""


def fresh_database(postgres_url: str, name: str) -> str:
    """An empty database `name` on the test server; its URL."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as c:
        c.execute(sqlalchemy.text(f"DROP DATABASE IF EXISTS {name}"))
        c.execute(sqlalchemy.text(f"CREATE DATABASE {name}"))
    engine.dispose()
    return postgres_url.rsplit("/", 1)[0] + f"/{name}"


def need_namespaces() -> None:
    import shutil

    if os.geteuid() != 0 or not shutil.which("unshare") or \
            subprocess.run(["unshare", "-u", "true"], capture_output=True).returncode != 0:
        pytest.skip("no UTS namespaces here (unshare -u needs root and a sandbox that allows it)")


def two_hosts_one_killed(url: str, tiny_data, name: str) -> None:
    """Two hosts (UTS namespaces with their own hostnames) start study `name` on `url` at the same
    moment; host A is killed whole mid-trial; host B and a continued run end with exactly N
    finished, nothing RUNNING, and A's trial retried with its params and seed."""
    n = 3  # A's trial, one of B's, and A's retried; a fourth would only add a fit
    path = str(write_study(name, epochs=40, pruner="none").resolve())
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}

    def host(hostname: str) -> subprocess.Popen:
        cmd = (f"hostname {hostname} && exec {sys.executable} -c \"$HOST\" "
               f"{path} {url} {tiny_data} {n} logs_{hostname}")
        return subprocess.Popen(["unshare", "-u", "sh", "-c", cmd], env={**env, "HOST": HOST},
                                start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    a, b = host("hosta"), host("hostb")  # the same moment
    from aecls.hpo.run import WORKER_ATTR
    from aecls.hpo.storage import make_storage

    deadline = time.time() + 180
    running_on_a = []
    while not running_on_a and time.time() < deadline and a.poll() is None:
        time.sleep(0.5)
        try:
            study = optuna.load_study(study_name=name, storage=make_storage(url, create=False))
        except (KeyError, AeclsError):  # no study (or no tables) yet
            continue
        running_on_a = [t for t in study.get_trials(states=(TrialState.RUNNING,))
                        if str(t.user_attrs.get(WORKER_ATTR, "")).startswith("hosta:")]
    why = a.communicate()[1].decode()[-2000:] if a.poll() is not None else "(still running)"
    assert running_on_a, f"host A never ran a trial: {why}"
    time.sleep(2)  # into the trial, heartbeats recorded
    os.killpg(a.pid, signal.SIGKILL)  # the whole host
    a.wait()
    _, err_b = b.communicate(timeout=300)
    assert b.returncode == 0, err_b.decode()[-2000:]
    time.sleep(4)  # past the grace period: A's trial is stale
    spec = load_study(path)
    study = run_study(spec, n, url, data_dir=str(tiny_data), progress=False, heartbeat_s=1, grace_s=3,
                      log_dir="logs_continue")
    trials = study.get_trials(deepcopy=False)
    assert sum(t.state == TrialState.COMPLETE for t in trials) == n
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert [t.number for t in failed] == [running_on_a[0].number]
    retried = next(t for t in trials
                   if RetryHeartbeatStaleTrialCallback.retried_trial_number(t) == failed[0].number)
    assert retried.state == TrialState.COMPLETE and retried.params == failed[0].params
    assert retried.user_attrs["seed"] == failed[0].user_attrs["seed"]
    assert {str(t.user_attrs[WORKER_ATTR]).split(":")[0] for t in trials} >= {"hosta", "hostb"}


def test_two_hosts_started_together_one_killed(tiny_data, postgres_url):
    """Issue #22: on an empty PostgreSQL database, directly (its own heartbeats)."""
    need_namespaces()
    two_hosts_one_killed(fresh_database(postgres_url, "hosts"), tiny_data, "hosts")
