"""Create or continue a study (storage, seeded TPE sampler, pruner) and run its trials, in one
process or in K worker processes that share the study through its storage."""

from __future__ import annotations

import multiprocessing as mp
import os
import time

import optuna
from optuna.trial import TrialState
from tqdm import tqdm

from aecls.errors import AeclsError
from aecls.hpo.objective import objective
from aecls.hpo.space import StudySpec
from aecls.hpo.storage import artifact_store, make_storage, trial_lock
from aecls.training import quiet_lightning

DEFAULT_STORAGE = "sqlite:///optuna.db"
LIVE = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)
DONE = (TrialState.COMPLETE, TrialState.PRUNED)


def open_study(spec: StudySpec, storage: str = DEFAULT_STORAGE, seed_offset: int = 0,
               **storage_kw) -> optuna.Study:
    """The study named in `spec` on `storage`; a second call continues it (load_if_exists).

    `constant_liar` lets parallel workers' TPE avoid sampling right where a running trial is.
    TPE handles the two objectives of `multi` too (multi-objective TPE); NSGA-II's generations
    (population 50 by default) need more trials than a 20-trial CPU study has.
    """
    # Each worker process offsets the seed: with one seed, K workers drew the same random
    # start-up configs, K times each.
    sampler = optuna.samplers.TPESampler(seed=spec.sampler_seed + seed_offset, constant_liar=True)
    study = optuna.create_study(study_name=spec.name, storage=make_storage(storage, **storage_kw),
                                directions=spec.directions, sampler=sampler, pruner=spec.build_pruner(),
                                load_if_exists=True)
    have = [d.name.lower() for d in study.directions]
    if have != spec.directions:
        raise AeclsError(f"study {spec.name} on {storage} was created to {have} (objective changed?); "
                         "give the study file another name or use another storage")
    return study


def work(spec: StudySpec, total: int, storage: str, data_dir: str | None, log_dir: str,
         threads: int | None = None, bar: tqdm | None = None, worker: int = 0, **storage_kw) -> None:
    """Run trials until the study holds `total` live (finished, running or queued) trials.

    Counting and starting a trial happen under one lock, released once the trial has begun, so
    K workers together run exactly `total` (a finished, pruned or re-queued trial counts once;
    failed ones do not). Optuna's MaxTrialsCallback checks only after a trial and can overshoot.
    """
    if threads:
        # Two processes each spinning 2 OpenMP threads on 2 cores ran 30x slower: split the cores.
        import torch

        torch.set_num_threads(threads)
    quiet_lightning()
    study = open_study(spec, storage, seed_offset=worker, **storage_kw)
    lock, store = trial_lock(storage), artifact_store(storage)
    while True:
        lock.acquire()
        held = True

        def run(trial: optuna.Trial) -> float:
            nonlocal held
            lock.release()  # the trial exists (popped or created): others may start theirs
            held = False
            return objective(trial, spec, data_dir=data_dir, log_dir=log_dir, artifacts=store)

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
        if bar is not None:
            bar.n = len(study.get_trials(deepcopy=False, states=DONE))
            bar.refresh()


def run_study(spec: StudySpec, n_trials: int | None = None, storage: str = DEFAULT_STORAGE,
              workers: int = 1, data_dir: str | None = None, log_dir: str = "lightning_logs",
              progress: bool = True, **storage_kw) -> optuna.Study:
    """Run the study up to `n_trials` (default: the study file's) trials in total, continuing an
    earlier run; with `workers > 1`, in that many processes splitting the CPU threads."""
    total = n_trials or spec.n_trials
    study = open_study(spec, storage, **storage_kw)
    args = (spec, total, storage, data_dir, log_dir)
    bar = tqdm(total=total, desc=f"study {spec.name}", unit="trial", disable=not progress)
    procs = []
    if workers > 1:
        threads = max(1, (os.cpu_count() or 1) // workers)
        ctx = mp.get_context("spawn")
        procs = [ctx.Process(target=work, args=args, kwargs={"threads": threads, "worker": i, **storage_kw})
                 for i in range(workers)]
        for p in procs:
            p.start()
        while any(p.is_alive() for p in procs):
            bar.n = len(study.get_trials(deepcopy=False, states=DONE))
            bar.refresh()
            time.sleep(1.0)
        for p in procs:
            p.join()
        failed = [p.exitcode for p in procs if p.exitcode]
        if failed:
            raise RuntimeError(f"{len(failed)} study worker(s) exited with codes {failed}")
    else:
        bar.n = len(study.get_trials(deepcopy=False, states=DONE))
        work(*args, bar=bar, **storage_kw)
    bar.n = len(study.get_trials(deepcopy=False, states=DONE))
    bar.close()
    return study
