"""Recovery of dead workers' trials. A trial records which process runs it (user attr `worker` =
host:pid); a RUNNING trial whose process is gone is failed and its params re-queued, as Optuna's
heartbeat retry does on RDB storages. Journal storages have no heartbeat, so without this such a
trial stayed RUNNING for ever."""

from __future__ import annotations

import os
import socket

import optuna
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState

from aecls.hpo.storage import MAX_RETRY, trial_lock

WORKER_ATTR = "worker"
Recovered = list[tuple[int, int | None]]  # (failed trial, its re-queued trial or None)


def worker_id(pid: int | None = None) -> str:
    return f"{socket.gethostname()}:{pid or os.getpid()}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def orphaned(trial: FrozenTrial, dead: set[int] | None, file_storage: bool) -> bool:
    """Is this RUNNING trial's process gone? With `dead`, only trials of those pids (this host).
    Else, on a file storage (one host: its worker lock is held), any trial of a pid that no longer
    runs, or that never recorded its worker (its process died right after creating it). A server
    storage's other trials are left to its heartbeats: another host may share this host's name."""
    owner = trial.user_attrs.get(WORKER_ATTR)
    if dead is None and not file_storage:
        return False
    if owner is None:
        return dead is None
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname():
        return False  # another host's: the server storage's heartbeats handle those (RDB or proxy)
    return int(pid) in dead if dead is not None else not _alive(int(pid))


def recover_trials(study: optuna.Study, storage: str, dead: set[int] | None = None,
                   requeue: bool = True) -> Recovered:
    """Fail the RUNNING trials whose worker died and re-queue their params (Optuna's
    RetryHeartbeatStaleTrialCallback, so `retried_trial_number` names the original; at most
    MAX_RETRY times). Returns (failed trial, its re-queued trial or None)."""
    lock = trial_lock(storage)
    lock.acquire()  # no worker is between creating a trial and recording its worker
    try:
        out = []
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if not orphaned(t, dead, file_storage=not lock.shared_server):
                continue
            try:
                study.tell(t.number, state=TrialState.FAIL)
            except (ValueError, RuntimeError):  # finished meanwhile (a heartbeat check got it first)
                continue
            if not requeue:
                out.append((t.number, None))
                continue
            failed = next(f for f in study.get_trials(deepcopy=True) if f.number == t.number)
            RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY)(study, failed)
            retry = next((r.number for r in study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
                          if (r.system_attrs.get("retry_history") or [None])[-1] == t.number), None)
            out.append((t.number, retry))
        return out
    finally:
        lock.release()


def requeued(trials: list[optuna.trial.FrozenTrial]) -> set[int]:
    """The numbers of the trials whose params were re-queued as another trial (Optuna's retry
    callbacks record the chain of originals in each retry's `retry_history`)."""
    return {n for t in trials for n in t.system_attrs.get("retry_history") or []}


def describe(recovered: Recovered) -> str:
    """What recover_trials did, for the user: "trial 2 failed, re-queued as trial 3; ..."."""
    return "; ".join(f"trial {f} failed, re-queued as trial {r}" if r is not None
                     else f"trial {f} failed (retried {MAX_RETRY} times already)"
                     for f, r in sorted(recovered))
