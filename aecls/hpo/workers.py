"""Running a study's trials: `work` (one process: count and start trials under a lock until the
study holds its total) and `supervise` (K worker processes that share the study through its
storage; one that dies has its trial recovered and is replaced)."""

from __future__ import annotations

import contextlib
import gc
import multiprocessing as mp
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState
from tqdm import tqdm

from aecls.core.errors import AeclsError, FitInterrupted, check
from aecls.hpo.objective import objective
from aecls.hpo.recovery import WORKER_ATTR, Recovered, describe, recover_trials, worker_id
from aecls.hpo.spec import StudySpec
from aecls.hpo.storage import artifact_store, trial_lock
from aecls.hpo.study import DONE, LIVE, open_study
from aecls.modules.speed import limit_threads
from aecls.training.trainer import quiet_lightning

# Replacements the launcher starts for workers that died, per worker, before it gives up.
RESTARTS_PER_WORKER = 3
USER_ERROR_EXIT = 2
INTERRUPTED_EXIT = 130


@dataclass(frozen=True)
class StudyRun:
    """What every worker of one `run_study` call runs: the study, its total and where it writes."""

    spec: StudySpec
    total: int
    storage: str
    data_dir: str | None
    log_dir: str
    artifacts: str | None = None
    objective_fn: Callable | None = None  # None: aecls's training objective
    storage_kw: dict[str, Any] = field(default_factory=dict)


def work(run: StudyRun, threads: int | None = None, bar: tqdm | None = None) -> None:
    """Run trials until the study holds `total` live (finished, running or queued) trials.

    Counting and starting a trial happen under one lock, released once the trial has begun, so
    K workers together run exactly `total` (a finished, pruned or re-queued trial counts once;
    failed ones do not). Optuna's MaxTrialsCallback checks only after a trial and can overshoot.
    """
    if threads:
        limit_threads(threads)  # the workers split the cores
    quiet_lightning()
    study = open_study(run.spec, run.storage, **run.storage_kw)
    # Each trial ends with a full garbage collection (gc_after_trial: a trial's Trainer and module
    # hold reference cycles, CUDA memory among them). With torch and Lightning loaded, most of the
    # heap is their modules, and scanning it every trial cost more than Optuna's whole bookkeeping
    # (BENCHMARKS.md, study overhead): freeze what exists now, so each collection scans only what
    # the trials made.
    gc.collect()
    gc.freeze()
    try:
        _trials(run, study, bar)
    finally:
        gc.unfreeze()  # a caller's own objects are collectable again


def trials_left(study: optuna.Study, total: int) -> bool:
    """Is there a trial to start: a queued one, or fewer than `total` live ones?"""
    trials = study.get_trials(deepcopy=False, states=LIVE)
    return any(t.state == TrialState.WAITING for t in trials) or len(trials) < total


def _trials(run: StudyRun, study: optuna.Study, bar: tqdm | None) -> None:
    """`work`'s loop: count and start trials under the lock until the study holds `total`."""
    lock, store = trial_lock(run.storage), artifact_store(run.storage, run.artifacts)
    me, verbosity = worker_id(), optuna.logging.get_verbosity()
    while True:
        lock.acquire()
        held = True

        def one(trial: optuna.Trial) -> float:
            nonlocal held
            trial.set_user_attr(WORKER_ATTR, me)  # before others may count: see `orphaned`
            lock.release()  # the trial exists (popped or created): others may start theirs
            held = False
            try:
                return (run.objective_fn or objective)(trial, run.spec, data_dir=run.data_dir,
                                                       log_dir=run.log_dir, artifacts=store)
            except AeclsError:
                # The user's error reaches them as one line (the CLI's); Optuna would log the
                # failed trial with a traceback first.
                optuna.logging.set_verbosity(optuna.logging.ERROR)
                raise

        try:
            # A trial whose worker died is failed (and re-queued as WAITING on RDB storages).
            optuna.storages.fail_stale_trials(study)
            if not trials_left(study, run.total):
                return
            study.optimize(one, n_trials=1, gc_after_trial=True)
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


def _worker_main(plan: WorkerPlan, error_file: str, run: StudyRun) -> None:
    """A worker process: its devices and threads, then `work`; a user error is written for the
    launcher, which prints it as the one line it would print without workers."""
    os.environ.update(plan.env)
    try:
        work(run, threads=plan.threads)
    except AeclsError as e:
        Path(error_file).write_text(str(e))
        sys.exit(USER_ERROR_EXIT)
    except (KeyboardInterrupt, FitInterrupted):  # Ctrl-C reached the whole process group: the
        sys.exit(INTERRUPTED_EXIT)  # launcher fails and re-queues this worker's trial and says so


def _exit_reason(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


def worker_context(preload: str = "aecls.hpo.workers"):
    """The multiprocessing context study workers (and the pipeline's side stages) start in: a fork
    server that imports `preload` once, then forks each process from that clean interpreter. Why
    not spawn: it imported torch and Lightning again in every worker (seconds each, all at once on
    few cores, and again for each restart). Why not fork: this process may hold threads and CUDA
    state; the server holds neither (CUDA works in its children, as with spawn), and a worker's
    CUDA_VISIBLE_DEVICES is set before CUDA starts."""
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload([preload])
    return ctx


def supervise(run: StudyRun, study: optuna.Study, workers: int, bar: tqdm) -> None:
    """Run `workers` processes until the study holds its total; restart one that dies (its trial
    recovered). Stopping early (a user error, a bug) stops the others and re-queues their trials
    (not for a user error: its config is bad); Ctrl-C raises `WorkersInterrupted`, which says
    which trials were recovered."""
    spec = run.spec
    recovered: Recovered = []
    ctx = worker_context()
    gpus, cpus = visible_gpus(), os.cpu_count() or 1
    devices = spec.trainer["devices"] if spec.trainer.get("accelerator") != "cpu" else 1
    errors = Path(tempfile.mkdtemp(prefix="aecls_workers_"))

    def start(slot: int) -> mp.Process:
        (errors / str(slot)).unlink(missing_ok=True)
        plan = worker_plan(slot, workers, gpus, cpus, devices)
        p = ctx.Process(target=_worker_main, args=(plan, str(errors / str(slot)), run),
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
                    recovered += recover_trials(study, run.storage, dead={p.pid})
                    raise KeyboardInterrupt
                if (errors / str(slot)).is_file():
                    user_error = True
                    raise AeclsError((errors / str(slot)).read_text())
                if p.exitcode > 0:  # an exception that is not the user's: a bug, its traceback is above
                    raise RuntimeError(f"study worker {slot} failed ({_exit_reason(p.exitcode)}); "
                                       "see its traceback above")
                what = describe(recover_trials(study, run.storage, dead={p.pid})) or "it held no trial"
                check(restarts < budget, f"study {spec.name}: workers died {restarts + 1} times "
                      f"(last: worker {slot}, {_exit_reason(p.exitcode)}); giving up. {what}")
                restarts += 1
                tqdm.write(f"aecls: study worker {slot} (pid {p.pid}) {_exit_reason(p.exitcode)}; {what}; "
                           f"replacement started ({restarts} of {budget})", file=sys.stderr)
                procs[slot] = start(slot)
            bar.n = len(study.get_trials(deepcopy=False, states=DONE))
            bar.refresh()
            time.sleep(0.5)
    except KeyboardInterrupt:
        recovered += _stop(procs, study, run.storage, requeue=True)
        raise WorkersInterrupted(recovered) from None
    except BaseException:
        _stop(procs, study, run.storage, requeue=not user_error)
        raise
    finally:
        shutil.rmtree(errors, ignore_errors=True)


class WorkersInterrupted(KeyboardInterrupt):
    """Ctrl-C while workers ran: `recovered` lists the trials failed and re-queued."""

    def __init__(self, recovered: Recovered) -> None:
        super().__init__()
        self.recovered = recovered


def _stop(procs: dict[int, mp.Process], study: optuna.Study, storage: str, requeue: bool) -> Recovered:
    """Stop the workers still running and recover their trials."""
    for p in procs.values():
        p.terminate()
    for p in procs.values():
        p.join()
    return recover_trials(study, storage, dead={p.pid for p in procs.values()}, requeue=requeue)
