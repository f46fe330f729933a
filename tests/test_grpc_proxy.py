"""Many hosts through Optuna's gRPC storage proxy (issue #29): `aecls study serve`, studies on
`--storage grpc://HOST:PORT`, and no lost trial behind it (aecls.hpo.storage.HeartbeatProxy)."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import optuna
import pytest
from optuna.storages import RetryHeartbeatStaleTrialCallback, fail_stale_trials
from optuna.trial import TrialState

from aecls.cli import main
from aecls.hpo import storage as storages
from aecls.hpo.run import run_study
from aecls.hpo.space import load_study
from tests.helpers import finished, write_study
from tests.services import free_port, start_proxy
from tests.test_hpo_services import fresh_database, need_namespaces, two_hosts_one_killed

pytestmark = [pytest.mark.services, pytest.mark.slow]


@contextlib.contextmanager
def serving(url: str):
    """`aecls study serve --storage URL` until the block ends; yields the grpc:// URL hosts use."""
    proxy, stop = start_proxy(url)
    try:
        yield proxy
    finally:
        stop()


def test_a_study_runs_and_is_read_through_the_proxy(tiny_data, capsys):
    with serving("sqlite:///served.db") as url:
        spec = load_study(write_study("proxied", epochs=1))
        study = run_study(spec, 3, url, data_dir=str(tiny_data), progress=False, log_dir="logs")
        trials = finished(study)
        assert len(trials) == 3
        assert all(storages.HEARTBEAT_ATTR in t.system_attrs for t in trials)  # its heartbeats
        assert main(["study", "plots", "proxied.yaml", "--storage", url]) == 0  # read-only commands
        out = capsys.readouterr().out
        complete = sum(t.state == TrialState.COMPLETE for t in trials)
        assert f"trials: {complete} complete, {3 - complete} pruned, 0 failed" in out, out
        # the same study, seen in the database behind the proxy
        direct = optuna.load_study(study_name="proxied", storage="sqlite:///served.db")
        assert len(finished(direct)) == 3
        # a second server on the same port: refused, nothing created
        assert main(["study", "serve", "--storage", "sqlite:///other.db", "--host", "127.0.0.1",
                     "--port", url.rsplit(":", 1)[1]]) == 2
        assert "is in use" in capsys.readouterr().err
        assert not Path("other.db").exists()


def test_a_trial_whose_heartbeat_stopped_is_failed_and_requeued(tiny_data):
    """The protocol alone, without killing anything: a RUNNING trial with no heartbeat for longer
    than the grace period is failed by the next `fail_stale_trials` and its params re-queued; a
    trial still beating is left alone."""
    with serving("sqlite:///beat.db") as url:
        host, port = storages.grpc_address(url)
        proxy = storages.HeartbeatProxy(host, port, heartbeat_s=1, grace_s=2)
        study = optuna.create_study(study_name="beat", storage=proxy)
        dead, alive = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)}), study.ask()
        proxy.record_heartbeat(dead._trial_id)
        proxy.record_heartbeat(alive._trial_id)
        time.sleep(1.5)
        proxy.record_heartbeat(alive._trial_id)
        fail_stale_trials(study)
        assert study.trials[dead.number].state == TrialState.RUNNING  # not yet past the grace
        time.sleep(1.5)
        proxy.record_heartbeat(alive._trial_id)
        fail_stale_trials(study)
        states = {t.number: t.state for t in study.trials}
        assert states[dead.number] == TrialState.FAIL and states[alive.number] == TrialState.RUNNING
        (retry,) = [t for t in study.trials if t.state == TrialState.WAITING]
        assert RetryHeartbeatStaleTrialCallback.retried_trial_number(retry) == dead.number
        assert retry.params == dead.params


@pytest.mark.parametrize("storage,says", [
    ("grpc://127.0.0.1:PORT", "nothing answers at 127.0.0.1:"),
    ("grpc://no-port", "use grpc://HOST:PORT"),
])
def test_a_proxy_that_is_not_there_is_one_line(tiny_data, monkeypatch, capsys, storage, says):
    monkeypatch.setattr(storages, "CONNECT_S", 1)
    write_study("lonely", epochs=1)
    url = storage.replace("PORT", str(free_port()))
    assert main(["study", "run", "lonely.yaml", "--storage", url, "--data-dir", str(tiny_data),
                 "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert says in err and len(err.splitlines()) == 1, err


def test_a_proxy_in_front_of_a_journal_file_is_refused(capsys):
    assert main(["study", "serve", "--storage", "journal:j.journal", "--port", str(free_port())]) == 2
    err = capsys.readouterr().err
    assert "Journal file" in err and "optuna#6084" in err
    assert not Path("j.journal").exists()


def test_two_hosts_through_one_proxy_one_killed(tiny_data, postgres_url):
    """The issue's test: the PostgreSQL multi-host test, with both hosts (and the continued run)
    going through one `aecls study serve` in front of the database."""
    need_namespaces()
    with serving(fresh_database(postgres_url, "proxied_hosts")) as url:
        two_hosts_one_killed(url, tiny_data, "proxied_hosts")


@pytest.mark.parametrize("storage,named", [("grpc://127.0.0.1:1", "a gRPC proxy"),
                                           ("journal:d.journal", "a journal file")])
def test_a_ddp_study_is_refused_where_optunas_ddp_pruning_cannot_run(tiny_data, capsys, storage, named):
    write_study("ddp", epochs=1, trainer={"accelerator": "cpu", "devices": 2})
    assert main(["study", "run", "ddp.yaml", "--storage", storage, "--data-dir", str(tiny_data)]) == 2
    err = capsys.readouterr().err
    assert f"DDP pruning needs an RDB storage (sqlite:///FILE or postgresql://...), not {named}" in err
    assert not Path("d.journal").exists()
