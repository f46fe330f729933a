"""Create or continue a study and run its trials, in one process or in K supervised worker
processes that share the study through its storage. The concerns live apart: opening and
fingerprinting a study (aecls.hpo.study), workers and their supervision (aecls.hpo.workers), and
recovery of dead workers' trials (aecls.hpo.recovery); this module joins them for the CLI, the
pipeline and the benchmarks.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

import optuna

from aecls.core.errors import FitInterrupted, Interrupted, check
from aecls.core.paths import DEFAULT_STORAGE, LOG_DIR
from aecls.core.progress import progress as progress_bar
from aecls.data.locate import locate
from aecls.hpo.recovery import WORKER_ATTR, describe, recover_trials
from aecls.hpo.spec import StudySpec
from aecls.hpo.storage import check_outputs, is_grpc, is_journal, mark_outputs, safe_url
from aecls.hpo.study import DONE, LIVE, open_study
from aecls.hpo.workers import StudyRun, supervise, trials_left, visible_gpus, work, worker_plan

__all__ = ["DONE", "LIVE", "WORKER_ATTR", "open_study", "run_study", "visible_gpus", "worker_plan"]


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
    this run's STUDY/ outputs go, checked before the storage is opened and marked with it once it is."""
    total = n_trials or spec.n_trials
    check(not (spec.distributed and (is_journal(storage) or is_grpc(storage))),
          f"study {spec.name} trains each trial on {spec.trainer['devices']} devices (DDP): Optuna's "
          "DDP pruning needs an RDB storage (sqlite:///FILE or postgresql://...), not "
          + ("a gRPC proxy" if is_grpc(storage) else "a journal file"))
    if workers > 1 and storage.startswith("sqlite:"):
        # It works, but SQLite lets one writer in at a time: the workers queue on every write
        # (BENCHMARKS.md, "Study overhead"), which a journal file does not.
        print(f"aecls: warning: {workers} workers share {safe_url(storage)}, and SQLite queues its "
              "writers; a journal:FILE storage is cheaper for several workers on one host "
              "(docs/studies.md, \"Which storage\")", file=sys.stderr)
    locate(spec.data.get("dataset", "fashion_mnist"), data_dir)  # a bad data dir fails here, once
    check_outputs(spec.name, storage, *outputs)  # before the open: a refusal creates nothing
    study = open_study(spec, storage, allow_changes=allow_changes, **storage_kw)
    mark_outputs(spec.name, storage, *outputs)  # after the open: a bad storage claims nothing
    for failed, retry in recover_trials(study, storage):
        print(f"aecls: trial {failed} was left RUNNING by a process that is gone: failed"
              + (f", re-queued as trial {retry}" if retry is not None else ""), file=sys.stderr)
    run = StudyRun(spec, total, storage, data_dir, log_dir, artifacts, objective_fn, storage_kw)
    bar = progress_bar(total, f"study {spec.name}", "trial", progress)
    bar.n = len(study.get_trials(deepcopy=False, states=DONE))
    try:
        # A finished study starts no worker processes (each would import torch only to stop).
        if workers > 1 and trials_left(study, total):
            supervise(run, study, workers, bar)
        else:
            work(run, bar=bar)
    except (KeyboardInterrupt, FitInterrupted) as e:
        bar.close()
        recovered = getattr(e, "recovered", [])  # the workers' trials (WorkersInterrupted)
        recovered += recover_trials(study, storage, dead={os.getpid()})  # this process's trial
        raise Interrupted(f"study {spec.name}: {describe(recovered) or 'no trial was running'}; "
                          "`aecls study run` continues it") from None
    bar.n = len(study.get_trials(deepcopy=False, states=DONE))
    bar.close()
    return study
