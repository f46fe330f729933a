"""Create or continue a study (storage, per-trial seeded TPE, pruner) and run its trials, in one
process or in K supervised worker processes that share the study through its storage.

A trial records which process runs it (user attr `worker` = host:pid). The launcher watches its
workers: one that dies (kill -9, the OOM killer) has its RUNNING trial failed and its params
re-queued, as Optuna's heartbeat retry does on RDB storages, and a replacement is started; a
RUNNING trial left by a crashed launcher on this host is recovered the same way when the study is
continued. Journal storages have no heartbeat, so without this such a trial stayed RUNNING for ever.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing as mp
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import optuna
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState
from tqdm import tqdm

from aecls.data.locate import locate
from aecls.errors import AeclsError, FitInterrupted, Interrupted, check
from aecls.hpo.objective import objective
from aecls.hpo.sampler import TrialSeededTPESampler
from aecls.hpo.space import StudySpec
from aecls.hpo.storage import (
    MAX_RETRY,
    artifact_store,
    claim_outputs,
    is_journal,
    make_storage,
    retry_races,
    safe_url,
    trial_lock,
)
from aecls.paths import DEFAULT_STORAGE, LOG_DIR
from aecls.training import quiet_lightning

LIVE = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)
DONE = (TrialState.COMPLETE, TrialState.PRUNED)
WORKER_ATTR = "worker"
# Replacements the launcher starts for workers that died, per worker, before it gives up.
RESTARTS_PER_WORKER = 3
USER_ERROR_EXIT = 2
INTERRUPTED_EXIT = 130


def open_study(spec: StudySpec, storage: str = DEFAULT_STORAGE, allow_changes: bool = False,
               create: bool = True, **storage_kw) -> optuna.Study:
    """The study named in `spec` on `storage`; a second call continues it (load_if_exists).

    `constant_liar` lets parallel workers' TPE avoid sampling right where a running trial is.
    TPE handles the two objectives of `multi` too (multi-objective TPE); NSGA-II's generations
    (population 50 by default) need more trials than a 20-trial CPU study has. A continued study
    must have been created from the same study file (space, epochs, objective, ...) unless
    `allow_changes`. With `create=False` (`study best`, `study plots`: commands that only
    read) neither the storage nor the study is created, and nothing is written to it.
    """
    # set_metric_names and heartbeats are "experimental" in Optuna: warned about in every worker
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    sampler = TrialSeededTPESampler(spec.seed, constant_liar=True)
    backend = make_storage(storage, create=create, **storage_kw)
    if create:  # hosts starting together race to create it: the losers load it (retry_races)
        study = retry_races(lambda: optuna.create_study(
            study_name=spec.name, storage=backend, directions=spec.directions, sampler=sampler,
            pruner=spec.build_pruner(), load_if_exists=True))
    else:
        try:
            study = optuna.load_study(study_name=spec.name, storage=backend, sampler=sampler,
                                      pruner=spec.build_pruner())
        except KeyError as e:
            raise AeclsError(f"no study {spec.name} on {safe_url(storage)}; `aecls study run` "
                             "creates it") from e
        except Exception as e:  # a server storage without Optuna's tables (sqlalchemy's errors)
            raise AeclsError(f"no study {spec.name} on {safe_url(storage)} ({type(e).__name__})") from e
    have = [d.name.lower() for d in study.directions]
    if have != spec.directions:
        raise AeclsError(f"study {spec.name} on {safe_url(storage)} was created to {have} (objective "
                         "changed?); give the study file another name or use another storage")
    now, before = spec.fingerprint(), study.user_attrs.get("spec")
    if before is not None and before != now and not allow_changes:
        changed = [k for k in now if before.get(k) != now[k]]
        raise AeclsError(f"study {spec.name} on {safe_url(storage)} was created from a different study "
                         f"file ({', '.join(changed)} changed); pass --allow-changes to continue it "
                         "anyway, or give the study another name")
    if not create:
        return study
    if before != now:
        retry_races(lambda: study.set_user_attr("spec", now))
    if study.metric_names != list(spec.metrics):
        # optuna-dashboard shows names, not "Objective 0"
        retry_races(lambda: study.set_metric_names(list(spec.metrics)))
    return study


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
        return False  # another host's: RDB heartbeats handle those
    return int(pid) in dead if dead is not None else not _alive(int(pid))


def recover_trials(study: optuna.Study, storage: str, dead: set[int] | None = None,
                   requeue: bool = True) -> list[tuple[int, int | None]]:
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


def work(spec: StudySpec, total: int, storage: str, data_dir: str | None, log_dir: str,
         artifacts: str | None = None, objective_fn: Callable | None = None, threads: int | None = None,
         bar: tqdm | None = None, **storage_kw) -> None:
    """Run trials until the study holds `total` live (finished, running or queued) trials.

    Counting and starting a trial happen under one lock, released once the trial has begun, so
    K workers together run exactly `total` (a finished, pruned or re-queued trial counts once;
    failed ones do not). Optuna's MaxTrialsCallback checks only after a trial and can overshoot.
    """
    if threads:
        # Processes that together spin more OpenMP threads than there are cores slow each other
        # down many times over: split the cores.
        import torch

        torch.set_num_threads(threads)
    quiet_lightning()
    study = open_study(spec, storage, **storage_kw)
    # Each trial ends with a full garbage collection (gc_after_trial: a trial's Trainer and module
    # hold reference cycles, CUDA memory among them). With torch and Lightning loaded, most of the
    # heap is their modules, and scanning it every trial cost more than Optuna's whole bookkeeping
    # (BENCHMARKS.md, study overhead): freeze what exists now, so each collection scans only what
    # the trials made.
    gc.collect()
    gc.freeze()
    try:
        _trials(spec, total, storage, data_dir, log_dir, artifacts, objective_fn, study, bar)
    finally:
        gc.unfreeze()  # a caller's own objects are collectable again


def _trials(spec: StudySpec, total: int, storage: str, data_dir: str | None, log_dir: str,
            artifacts: str | None, objective_fn: Callable | None, study: optuna.Study,
            bar: tqdm | None) -> None:
    """`work`'s loop: count and start trials under the lock until the study holds `total`."""
    lock, store = trial_lock(storage), artifact_store(storage, artifacts)
    me, verbosity = worker_id(), optuna.logging.get_verbosity()
    while True:
        lock.acquire()
        held = True

        def run(trial: optuna.Trial) -> float:
            nonlocal held
            trial.set_user_attr(WORKER_ATTR, me)  # before others may count: see `orphaned`
            lock.release()  # the trial exists (popped or created): others may start theirs
            held = False
            try:
                return (objective_fn or objective)(trial, spec, data_dir=data_dir, log_dir=log_dir,
                                                   artifacts=store)
            except AeclsError:
                # The user's error reaches them as one line (the CLI's); Optuna would log the
                # failed trial with a traceback first.
                optuna.logging.set_verbosity(optuna.logging.ERROR)
                raise

        try:
            # A trial whose worker died is failed (and re-queued as WAITING on RDB storages).
            optuna.storages.fail_stale_trials(study)
            trials = study.get_trials(deepcopy=False, states=LIVE)
            waiting = any(t.state == TrialState.WAITING for t in trials)
            if not waiting and len(trials) >= total:
                return
            study.optimize(run, n_trials=1, gc_after_trial=True)
        finally:
            if held:
                lock.release()
            optuna.logging.set_verbosity(verbosity)
        if bar is not None:
            bar.n = len(study.get_trials(deepcopy=False, states=DONE))
            bar.refresh()


@dataclass(frozen=True)
class WorkerPlan:
    """What worker `slot` gets: torch threads and its environment (the GPUs it sees)."""

    threads: int
    env: dict[str, str] = field(default_factory=dict)


def visible_gpus() -> list[str]:
    """The GPU ids this process may hand out: CUDA_VISIBLE_DEVICES if set, else all."""
    if "CUDA_VISIBLE_DEVICES" in os.environ:
        return [g.strip() for g in os.environ["CUDA_VISIBLE_DEVICES"].split(",") if g.strip()]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())]


def worker_plan(slot: int, workers: int, gpus: list[str], cpus: int, devices: int = 1) -> WorkerPlan:
    """Worker `slot` of `workers` sees GPU(s) slot*devices ... mod G (set before CUDA starts in
    it) and gets its share of the CPU cores as torch threads."""
    threads = max(1, cpus // workers)
    if not gpus:
        return WorkerPlan(threads)
    ids = [gpus[(slot * devices + j) % len(gpus)] for j in range(devices)]
    return WorkerPlan(threads, {"CUDA_VISIBLE_DEVICES": ",".join(dict.fromkeys(ids))})


def _worker_main(plan: WorkerPlan, error_file: str, *args, **kwargs) -> None:
    """A worker process: its devices and threads, then `work`; a user error is written for the
    launcher, which prints it as the one line it would print without workers."""
    os.environ.update(plan.env)
    try:
        work(*args, threads=plan.threads, **kwargs)
    except AeclsError as e:
        Path(error_file).write_text(str(e))
        sys.exit(USER_ERROR_EXIT)
    except (KeyboardInterrupt, FitInterrupted):  # Ctrl-C reached the whole process group: the
        sys.exit(INTERRUPTED_EXIT)  # launcher fails and re-queues this worker's trial and says so


def describe(recovered: list[tuple[int, int | None]]) -> str:
    """What recover_trials did, for the user: "trial 2 failed, re-queued as trial 3; ..."."""
    return "; ".join(f"trial {f} failed, re-queued as trial {r}" if r is not None
                     else f"trial {f} failed (retried {MAX_RETRY} times already)"
                     for f, r in sorted(recovered))


def _exit_reason(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


def _supervise(spec: StudySpec, study: optuna.Study, args: tuple, workers: int, bar: tqdm,
               storage: str, storage_kw: dict, recovered: list) -> None:
    ctx = mp.get_context("spawn")  # fresh interpreters: no CUDA or thread state inherited
    gpus, cpus = visible_gpus(), os.cpu_count() or 1
    devices = spec.trainer["devices"] if spec.trainer.get("accelerator") != "cpu" else 1
    errors = Path(tempfile.mkdtemp(prefix="aecls_workers_"))

    def start(slot: int) -> mp.Process:
        (errors / str(slot)).unlink(missing_ok=True)
        plan = worker_plan(slot, workers, gpus, cpus, devices)
        p = ctx.Process(target=_worker_main, args=(plan, str(errors / str(slot)), *args), kwargs=storage_kw,
                        name=f"aecls-study-worker-{slot}")
        p.start()
        return p

    procs = {slot: start(slot) for slot in range(workers)}
    restarts, budget = 0, RESTARTS_PER_WORKER * workers
    user_error = False
    try:
        while procs:
            for slot, p in list(procs.items()):
                if p.is_alive():
                    continue
                p.join()
                del procs[slot]
                if p.exitcode == 0:
                    continue
                if p.exitcode == INTERRUPTED_EXIT:  # Ctrl-C reached the worker before this process
                    recovered += recover_trials(study, storage, dead={p.pid})
                    raise KeyboardInterrupt
                if (errors / str(slot)).is_file():
                    user_error = True
                    raise AeclsError((errors / str(slot)).read_text())
                if p.exitcode > 0:  # an exception that is not the user's: a bug, its traceback is above
                    raise RuntimeError(f"study worker {slot} failed ({_exit_reason(p.exitcode)}); "
                                       "see its traceback above")
                what = describe(recover_trials(study, storage, dead={p.pid})) or "it held no trial"
                check(restarts < budget, f"study {spec.name}: workers died {restarts + 1} times "
                      f"(last: worker {slot}, {_exit_reason(p.exitcode)}); giving up. {what}")
                restarts += 1
                tqdm.write(f"aecls: study worker {slot} (pid {p.pid}) {_exit_reason(p.exitcode)}; {what}; "
                           f"replacement started ({restarts} of {budget})", file=sys.stderr)
                procs[slot] = start(slot)
            bar.n = len(study.get_trials(deepcopy=False, states=DONE))
            bar.refresh()
            time.sleep(0.5)
    finally:
        if procs:  # stopping early: stop the others; re-queue their trials unless the config is bad
            for p in procs.values():
                p.terminate()
            for p in procs.values():
                p.join()
            recovered += recover_trials(study, storage, dead={p.pid for p in procs.values()},
                                        requeue=not user_error)
        shutil.rmtree(errors, ignore_errors=True)


def run_study(spec: StudySpec, n_trials: int | None = None, storage: str = DEFAULT_STORAGE,
              workers: int = 1, data_dir: str | None = None, log_dir: str = LOG_DIR,
              progress: bool = True, artifacts: str | None = None, allow_changes: bool = False,
              objective_fn: Callable | None = None, outputs: tuple[str, ...] = (),
              **storage_kw) -> optuna.Study:
    """Run the study up to `n_trials` (default: the study file's) trials in total, continuing an
    earlier run; with `workers > 1`, in that many supervised processes splitting the CPU threads
    and the GPUs. `artifacts`: directory of the artifact store (default: beside the storage).
    `objective_fn` replaces the training objective (a top-level function, for worker processes):
    the study-overhead benchmark's stand-in that trains nothing. `outputs`: folders under which
    this run's STUDY/ outputs go, claimed for this storage (claim_outputs) once it is open."""
    total = n_trials or spec.n_trials
    check(not (spec.distributed and is_journal(storage)),
          f"study {spec.name} trains each trial on {spec.trainer['devices']} devices (DDP): Optuna's "
          "DDP pruning needs an RDB storage (sqlite:///FILE or postgresql://...), not a journal file")
    locate(spec.data.get("dataset", "fashion_mnist"), data_dir)  # a bad data dir fails here, once
    study = open_study(spec, storage, allow_changes=allow_changes, **storage_kw)
    claim_outputs(spec.name, storage, *outputs)  # after the open: a bad storage claims nothing
    for failed, retry in recover_trials(study, storage):
        print(f"aecls: trial {failed} was left RUNNING by a process that is gone: failed"
              + (f", re-queued as trial {retry}" if retry is not None else ""), file=sys.stderr)
    args = (spec, total, storage, data_dir, log_dir, artifacts, objective_fn)
    bar = tqdm(total=total, desc=f"study {spec.name}", unit="trial", disable=not progress)
    bar.n = len(study.get_trials(deepcopy=False, states=DONE))
    recovered: list[tuple[int, int | None]] = []
    try:
        if workers > 1:
            _supervise(spec, study, args, workers, bar, storage, storage_kw, recovered)
        else:
            work(*args, bar=bar, **storage_kw)
    except (KeyboardInterrupt, FitInterrupted):
        bar.close()
        recovered += recover_trials(study, storage, dead={os.getpid()})  # this process's trial
        raise Interrupted(f"study {spec.name} interrupted: {describe(recovered) or 'no trial was running'}; "
                          "`aecls study run` continues it") from None
    bar.n = len(study.get_trials(deepcopy=False, states=DONE))
    bar.close()
    return study
