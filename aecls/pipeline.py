"""The whole chain in one command: study -> best-trial re-run -> autoencoder and SimCLR fits ->
transfer sweeps (the study's encoder, the DAE's, SimCLR's) and their comparison -> classifier test
-> report. Finished stages are found on disk and skipped (the study continues
to its total), unless `fresh`. Small honest defaults; `full` runs studies/cae_seed004.yaml at full scale."""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

from aecls import fullrun
from aecls.core.errors import AeclsError
from aecls.core.locking import FileLock
from aecls.core.paths import (
    ARTIFACTS,
    BEST_FILE,
    COMPARE_OUT,
    DEFAULT_STORAGE,
    LOG_DIR,
    PARALLEL_STORAGE,
    PIPELINE_JSON,
    PIPELINE_LOCK,
    REPORTS,
    SWEEP_CSV,
    SWEEP_MD,
    TRANSFER_OUT,
    find_config,
    tool_command,
)
from aecls.hpo.best import format_best, rerun_best
from aecls.hpo.run import DONE, open_study, run_study
from aecls.hpo.space import load_study
from aecls.hpo.storage import dashboard_command, make_storage
from aecls.hpo.summary import study_outputs
from aecls.hpo.workers import worker_context
from aecls.modules.encoders import stale_export
from aecls.modules.registry import ENCODER_KINDS, of_kind
from aecls.modules.speed import limit_threads
from aecls.report.build import build_report, latest
from aecls.training.train import load_train_config, train
from aecls.transfer.compare import compare_sweeps
from aecls.transfer.config import DEFAULT_METHODS, SweepConfig
from aecls.transfer.methods import method_names
from aecls.transfer.sweep import markdown_table, run_sweep


@dataclass(frozen=True)
class Scale:
    """How much one pipeline run trains; the report states it (`describe`)."""

    name: str
    study: str  # the study file of stage 1
    seeds: int  # seeds of the best-trial re-run
    fit_epochs: int | None  # epochs of each stage-3 fit; None: each config's own
    labels: tuple[int | None, ...]  # label budgets of the sweeps; None = all
    sweep_seeds: int
    sweep_epochs: int  # passes over each labelled subset ...
    sweep_min_steps: int  # ... but at least this many steps a run
    fitted: tuple[str, ...] | None = None  # stage 3; None: every family whose encoder transfers
    compared: tuple[str, ...] = ()  # fits whose encoders are swept beside the study's and compared
    fit_args: dict = field(default_factory=dict)  # {family: init_args on top of its config's}
    # after the fits, aecls.fullrun at these settings: every method, settings chosen on validation
    chooses: fullrun.Full | None = None

    def fits(self) -> list[str]:
        """The families fitted in stage 3 (configs/<name>.yaml)."""
        return list(self.fitted) if self.fitted is not None else [f.name for f in of_kind(*ENCODER_KINDS)]

    def pretexts(self) -> list[str]:
        """The fits whose encoders are swept beside the study's (frozen, fine-tuned) and compared."""
        return list(self.compared)

    def sweep(self, encoder: str, data_dir: str | None, methods: tuple[str, ...] = DEFAULT_METHODS,
              **kw) -> SweepConfig:
        """A sweep of `encoder` by `methods`, at this scale's budgets, seeds and run length (`kw`
        on top)."""
        return SweepConfig(encoder=encoder, labels=list(self.labels), seeds=self.sweep_seeds,
                           epochs=self.sweep_epochs, min_steps=self.sweep_min_steps, data_dir=data_dir,
                           methods=methods, **kw)

    def describe(self) -> str:
        fits = "each config's epochs" if self.fit_epochs is None else f"{self.fit_epochs} epoch(s) each"
        budgets = ", ".join("all" if b is None else f"{b:,}" for b in self.labels)
        extra = "".join(f"; {k}: {', '.join(f'{a} {v}' for a, v in args.items())}"
                        for k, args in self.fit_args.items())
        return (f"{self.name} scale: study `{self.study}`, best trial re-run with {self.seeds} seed(s); "
                f"fits of {', '.join(self.fits())} (and the classifier) at {fits}{extra}; sweeps of the "
                f"study's encoder and {', '.join(self.pretexts())} at {budgets} labels, "
                f"{self.sweep_seeds} seeds, {self.sweep_epochs} passes or at least "
                f"{self.sweep_min_steps} steps a run"
                + (self.chooses.describe() if self.chooses is not None else ""))


MAX_SIDE = 4  # processes for stages side by side, at most
STOP_GRACE_S = 10.0  # after a stop, how long a side process has to end its run before it is killed
LOGS = "pipeline_logs"  # under ARTIFACTS: the output of the stages run side by side
# The quickstart: what the report shows, at a size that fits five minutes on 2 cores. Shorter
# than the full scale in the fits (one epoch), the sweeps' runs (5 passes / 150 steps) and the
# VAE's test NLL (a looser bound from 5 importance samples); the report says so.
# The fits start in this order beside the best trial's re-run, four processes for five stages:
# the shortest (cae) last, to take the process the first to finish frees, not the VAE.
QUICK = Scale("quick", "studies/quickstart.yaml", 1, 1, (100, 1000, 10000), 2, 5, 150,
              fitted=("vae", "dae", "simclr", "cae"), compared=("dae", "simclr"),
              fit_args={"vae": {"nll_samples": 5}})
# The full scale: after the fits, every method on the same kept encoders, its settings chosen on
# validation images (aecls.fullrun, which sets its sweeps' budgets and seeds).
FULL = Scale("full", "studies/cae_seed004.yaml", 3, None, (100, 1000, 10000, None), 3, 10, 300,
             compared=fullrun.TRANSFERRED[1:], chooses=fullrun.Full())


def fit_config(config: str, data_dir: str | None, epochs: int | None, init_args: dict) -> None:
    """Fit configs/CONFIG.yaml as `aecls fit --config` does (its logger, checkpoints and test
    report), `epochs` and `init_args` on top of the file's."""
    cfg = load_train_config(find_config(config), data_dir=data_dir, quiet=False)
    cfg.trainer.update(enable_progress_bar=False, enable_model_summary=False)
    if epochs:
        cfg.trainer["max_epochs"] = epochs
    cfg.model["init_args"].update(init_args)
    train(cfg)


class Stages:
    """The pipeline's stages as they run: each printed, timed as it ends, or skipped when its
    output exists, saying what it reuses. `write` keeps the times as data (PIPELINE_JSON) for the
    report and prints the summary."""

    def __init__(self) -> None:
        self.rows: list[dict] = []
        self.report: Path | None = None  # the report stage's file
        self.notes: dict[str, str] = {}  # more for the report (PIPELINE_JSON): what the full run adds
        self._open: tuple[dict, float] | None = None
        self.start = time.perf_counter()

    def _close(self) -> None:
        if self._open is not None:
            row, t0 = self._open
            row["seconds"] = round(time.perf_counter() - t0, 1)
            print(f"   ({row['stage']}: {row['seconds']:.0f} s)", flush=True)
            self._open = None

    def todo(self, title: str, done: Path | None) -> bool:
        """Is stage `title` still to do? If `done` exists, no: it is reused, and said so."""
        if done is None or not done.exists():
            return True
        self._close()
        print(f"\n== {title}: already done; reusing {done}")
        self.rows.append({"stage": title, "seconds": 0.0, "reused": str(done)})
        return False

    def __call__(self, title: str) -> None:
        """Start stage `title` (timed until the next one starts)."""
        self._close()
        print(f"\n== {title}", flush=True)
        self.rows.append({"stage": title, "seconds": 0.0, "reused": None})  # timed when it ends
        self._open = (self.rows[-1], time.perf_counter())

    def record(self, title: str, seconds: float) -> None:
        """A stage that ran beside others: its own seconds (inside its group's)."""
        self.rows.append({"stage": title, "seconds": round(seconds, 1), "reused": None, "side": True})

    def write(self, path: Path, scale: Scale, final: bool = True) -> dict:
        """The stage times as data; not `final`: the rows so far, without the stage still running
        (the report's, which reads them)."""
        if final:
            self._close()
        running = self._open[0] if self._open is not None else None
        import platform

        import torch

        gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
        info = {"scale": scale.name, "scale_text": scale.describe(),
                "stages": [r for r in self.rows if r is not running],
                "seconds": round(time.perf_counter() - self.start, 1), **self.notes,
                "machine": {"cores": os.cpu_count(), "torch_threads": torch.get_num_threads(), "gpu": gpu,
                            "cpu": platform.processor() or platform.machine()}}
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(info, indent=2))
        return info


@contextmanager
def folder_lock(path: Path = Path(PIPELINE_LOCK)):
    """One pipeline per folder: a second one started here says which process holds it."""
    lock = FileLock(path)
    if not lock.acquire(blocking=False):
        raise AeclsError(f"this folder is in use by another aecls pipeline (pid {lock.holder()}); wait "
                         "for it or run in another folder")
    try:
        lock.write_holder()
        yield
    finally:
        lock.release()


def study_progress(spec, storage: str, workers: int = 1) -> str:
    """How far the pipeline's study is: fresh, or continuing an earlier run (read only); and the
    workers it starts, when it has trials left to run."""
    on = f", {workers} workers" if workers > 1 else ""
    try:
        study = open_study(spec, storage, create=False, allow_changes=True)
    except AeclsError:  # no storage or no study yet
        return f"{spec.n_trials} trials{on}"
    done = len(study.get_trials(deepcopy=False, states=DONE))
    on = on if done < spec.n_trials else ""  # a finished study starts no workers (run_study)
    return f"continues an earlier run ({done} of {spec.n_trials} trials done){on}"


def run_pipeline(full: bool = False, fresh: bool = False, data_dir: str | None = None,
                 show_plan: bool = False) -> Path | None:
    """The pipeline (quick or `full` scale); `show_plan`: print its stages, runs and estimated time
    and run nothing."""
    if show_plan:
        return _run(full, fresh, data_dir, show_plan)
    with folder_lock():
        return _run(full, fresh, data_dir)


def side_slots(cores: int | None = None, tasks: int | None = None) -> tuple[int, int]:
    """(processes, threads each) for `tasks` independent stages side by side (None: one per core):
    a process per task up to MAX_SIDE, the cores split between them. More processes than cores
    when there are more tasks: each computes on one thread, which time-shares cheaply (it is
    several threads per process, spinning at their barriers, that slow down many times over when
    oversubscribed), and the group ends when its work is done, not when the one process left
    with two stages finishes them (RESULTS.md, "Pipeline"). One core: one process, as before."""
    cores = cores or os.cpu_count() or 1
    if cores == 1:
        return 1, 1
    n = max(1, min(tasks or cores, MAX_SIDE))
    return n, max(1, cores // n)


@dataclass(frozen=True)
class Stage:
    """One step of the pipeline, declared as data: what it runs (`fn(*args)`, a top-level
    function, for a spawned side process), the stages whose outputs it reads (`needs`), the file
    whose presence means it is finished (`done()`: reused, not run again; None: it always runs,
    as the study that continues to its total and the cheap compare and report do), and the folders
    it writes (`owns`: what `fresh` deletes). From these follow the order, the skipping, `fresh` and
    which stages run side by side (those whose inputs are all finished). `alone`: in this process,
    by itself (the study has its own worker processes; compare and report take a second)."""

    name: str  # what other stages' `needs` call it
    title: str  # what the output and the report's stage table call it
    fn: Callable
    args: tuple = ()
    needs: tuple[str, ...] = ()
    done: Callable[[], Path | None] = lambda: None
    owns: tuple[Path, ...] = ()
    alone: bool = False
    runs: int = 1  # the runs it makes (a sweep's: budgets x seeds x methods), for the progress line
    cost: float = 0.0  # its estimated seconds on one core (0: not estimated; the full scale's are)
    rows: Path | None = None  # a sweep stage's CSV: its runs done so far, counted as they land


def _exists(path: Path) -> Callable[[], Path | None]:
    return lambda: path if path.exists() else None


def _either(done: Callable[[], Path | None], path: Path) -> Callable[[], Path | None]:
    """`done`, or else `path` if it exists: a stage whose output a later one supersedes."""
    return lambda: done() or (path if path.exists() else None)


def _latest_fit(config: str) -> Callable[[], Path | None]:
    return lambda: latest(Path(LOG_DIR), config)


def _in_process(fn: Callable, args: tuple, log: str, threads: int) -> tuple[str | None, float]:
    """A task in a side process: its own thread count, its output (Lightning's included) to `log`;
    (the user error it ended with or None, seconds)."""
    limit_threads(threads)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    saved = os.dup(1), os.dup(2)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    start = time.perf_counter()
    try:
        fn(*args)
        return None, time.perf_counter() - start
    except AeclsError as e:
        return str(e), time.perf_counter() - start
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(fd)


def stop_side(pool: ProcessPoolExecutor, grace: float | None = None) -> None:
    """End every process of `pool` (an error or a stop in this one): SIGTERM first, so a fit
    ends as a stopped run does (its sweep keeps every finished row), then SIGKILL whatever is
    still alive after `grace` seconds (STOP_GRACE_S). Why not only terminate and shut down: a
    process whose fit traps SIGTERM (Lightning's signal connector ends the fit gracefully, then
    returns) goes on to the next stage already in the executor's call queue, and
    shutdown(wait=True) (or the interpreter's exit, which joins the executor) then waits for that
    whole stage: the hang of a stop during a wave of FixMatch stages. cancel_futures removes only
    stages not yet queued; terminate_workers() and kill_workers() arrive in Python 3.14."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    end = time.monotonic() + (STOP_GRACE_S if grace is None else grace)
    try:
        for process in processes:
            process.terminate()
        for process in processes:
            process.join(max(0.0, end - time.monotonic()))
    finally:  # a second Ctrl-C while waiting only shortens the grace
        for process in processes:
            if process.is_alive():
                process.kill()
                process.join()


def run_beside(timer: Stages, tasks: list[tuple[str, Stage]], logs: Path) -> None:
    """Run independent stages (title, stage): one after another in this process on a one-core
    machine, else in `side_slots()` spawned processes with the cores split, each one's output in
    logs/."""
    n, threads = side_slots(tasks=len(tasks))
    if n == 1 or len(tasks) <= 1:
        for title, t in tasks:
            timer(title)
            t.fn(*t.args)
        return

    logs.mkdir(parents=True, exist_ok=True)
    timer(f"{len(tasks)} stages side by side ({n} processes x {threads} torch thread(s))")
    print(f"   {', '.join(t.title for _, t in tasks)}; their output in {logs}/", flush=True)
    log = {title: logs / (re.sub(r"[^a-z0-9]+", "_", t.title.lower()) + ".log") for title, t in tasks}
    # the processes start as a study's workers do (why: worker_context)
    pool = ProcessPoolExecutor(n, mp_context=worker_context("aecls.pipeline"))
    try:
        running = {pool.submit(_in_process, t.fn, t.args, str(log[title]), threads): title
                   for title, t in tasks}
        for future in as_completed(running):  # each as it ends
            title = running[future]
            error, seconds = future.result()  # a bug in the stage raises here, with its traceback
            timer.record(title, seconds)
            print(f"   {title}: {seconds:.0f} s ({log[title]})", flush=True)
            if error is not None:
                raise AeclsError(f"pipeline stage {title}: {error} (its output: {log[title]})")
    except BaseException:
        stop_side(pool)
        raise
    pool.shutdown(wait=True)


def waves(stages: list[Stage]) -> list[list[Stage]]:
    """The order `stages`' `needs` allow (graphlib), as waves: of the stages whose inputs are all
    finished, one that runs `alone` goes first, by itself, else they all run side by side, as one
    wave (measured faster than starting each as soon as its inputs are ready: docs/notebook.md).
    A stage that needs what no stage makes, or stages that wait on each other, are a bug."""
    by_name = {t.name: t for t in stages}
    for t in stages:
        unknown = set(t.needs) - set(by_name)
        if unknown:
            raise ValueError(f"pipeline stage {t.name} needs {sorted(unknown)}, which no stage makes")
    order = TopologicalSorter({t.name: t.needs for t in stages})
    try:
        order.prepare()
    except CycleError as e:
        raise ValueError(f"pipeline stages {e.args[1]} wait on each other") from None
    out, ready = [], []
    while order.is_active():
        ready += [by_name[n] for n in order.get_ready()]
        ready.sort(key=stages.index)  # the stage list's order within a wave
        alone = [t for t in ready if t.alone]
        wave = alone[:1] or ready
        out.append(wave)
        ready = [t for t in ready if t not in wave]
        order.done(*(t.name for t in wave))
    return out


def wave_seconds(wave: list[Stage], cores: int, left: bool = False) -> float:
    """A wave's estimated wall seconds: its stages' core-seconds over the cores, but no less than its
    longest stage (one process computes on one core); `left`: each stage's share of its runs
    not yet done."""
    costs = [t.cost * (1 - _runs_done(t) / max(1, t.runs) if left else 1) for t in wave]
    return costs[0] if len(wave) == 1 else max(max(costs), sum(costs) / max(1, cores))


def _runs_done(t: Stage, ran: set[str] = frozenset()) -> int:
    if t.name in ran or t.done() is not None:
        return t.runs
    if t.rows is not None and t.rows.is_file():
        with open(t.rows) as f:
            return min(t.runs, max(0, sum(1 for _ in f) - 1))
    return 0


def progress_line(stages: list[Stage], left: list[list[Stage]], cores: int,
                  ran: set[str] = frozenset()) -> str:
    """Runs done of all (`ran`: the stages this pipeline ran, finished whatever their `done` says),
    and the estimated time left: each wave still to run, each stage by the share of its runs not
    yet done."""
    done, total = sum(_runs_done(t, ran) for t in stages), sum(t.runs for t in stages)
    seconds = sum(wave_seconds(w, cores, left=True) for w in left)
    return f"{done} of {total} runs done; about {_hours(seconds)} left (estimated)"


def _hours(seconds: float) -> str:
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"


def plan_text(stages: list[Stage], cores: int) -> str:
    """What a pipeline will run, before anything trains: each wave's stages, their runs and the
    estimated wall time (stages already finished: reused, no time)."""
    lines, total = [], 0.0
    for k, wave in enumerate(waves(stages), 1):
        todo = [t for t in wave if t.done() is None]
        seconds = wave_seconds(todo, cores) if todo else 0.0
        total += seconds
        how = "alone" if wave[0].alone else f"{len(wave)} side by side"
        lines.append(f"wave {k} ({how}), ~{_hours(seconds)}:")
        lines += [f"   {t.title}: {t.runs} run(s), ~{t.cost / 60:.0f} min on one core"
                  + (" (done: reused)" if t.done() is not None else "") for t in wave]
    runs = sum(t.runs for t in stages)
    return "\n".join([*lines, f"in all: {len(stages)} stages, {runs} runs, about {_hours(total)} on "
                                f"{cores} cores (per-run costs measured on a 2-core CPU: aecls/fullrun.py)"])


def run_stages(stages: list[Stage], timer: Stages, logs: Path) -> None:
    """Run `stages` wave by wave (`waves`): a finished stage is reused; stage k of N is titled
    "k/N NAME". With estimated costs, each wave starts with the runs done and the time left."""
    title = {t.name: f"{k}/{len(stages)} {t.title}" for k, t in enumerate(stages, 1)}
    planned = waves(stages)
    cores = os.cpu_count() or 1
    ran: set[str] = set()
    for k, wave in enumerate(planned):
        if any(t.cost for t in stages):
            print(f"\n== progress: {progress_line(stages, planned[k:], cores, ran)}", flush=True)
        todo = [t for t in wave if timer.todo(title[t.name], t.done())]
        if wave[0].alone:
            for t in todo:
                timer(title[t.name])
                t.fn(*t.args)
        else:
            run_beside(timer, [(title[t.name], t) for t in todo], logs)
        ran.update(t.name for t in wave)


def export_best(spec, storage: str, seeds: int, data_dir: str | None) -> None:
    """Re-run the study's best trial and export its encoder (prints what `study best` does)."""
    print(format_best(rerun_best(spec, open_study(spec, storage), seeds, data_dir)))


def sweep(cfg: SweepConfig) -> None:
    print(markdown_table(run_sweep(cfg, progress=False), cfg.score))


def study_stage(spec, storage: str, workers: int, data_dir: str | None) -> None:
    """Run (or continue) the study to its total; an export older than its best trial is dropped,
    so the export stage runs again."""
    study = run_study(spec, storage=storage, workers=workers, data_dir=data_dir, progress=True)
    export = Path(ARTIFACTS) / spec.name
    print(study_outputs(spec, study, export)[0])
    if stale_export(export):  # the study was continued past its export: export its best again
        (export / BEST_FILE).unlink()


def compare_stage(name: str, pretexts: list[str]) -> None:
    compare_sweeps([(f"cae ({name})", TRANSFER_OUT), *((p, f"{TRANSFER_OUT}_{p}") for p in pretexts)],
                   COMPARE_OUT)


def sweep_of(s: Scale, pretext: str, data_dir: str | None) -> None:
    """The sweep of a fitted pretext's encoder (frozen, fine-tuned), for the comparison; its
    checkpoint is found when the stage runs, after the fit."""
    sweep(s.sweep(str(latest(Path(LOG_DIR), pretext)), data_dir, methods=("frozen", "finetune"),
                  out=f"{TRANSFER_OUT}_{pretext}"))


def report_stage(name: str, data_dir: str | None, timer: Stages, s: Scale, transfer: str,
                 compared: str) -> None:
    timer.write(Path(ARTIFACTS) / PIPELINE_JSON, s, final=False)  # what the report's stage table reads
    timer.report = build_report(name, study_name=name, data_dir=data_dir, transfer_dir=transfer,
                                compare_dir=compared)


def plan(s: Scale, spec, storage: str, workers: int, data_dir: str | None, timer: Stages) -> list[Stage]:
    """The pipeline at scale `s`, as data: every stage, what it reads and what it leaves."""
    name = spec.name
    export = Path(ARTIFACTS) / name
    cost = fullrun.STAGE_COST if s.chooses is not None else {}
    study = f"study {name}: {study_progress(spec, storage, workers)}"
    head = [
        Stage("study", study, study_stage, (spec, storage, workers, data_dir),
              owns=(export, Path(LOG_DIR) / name), alone=True, cost=cost.get("study", 0)),
        Stage("export", "re-run the best trial, export its encoder", export_best,
              (spec, storage, s.seeds, data_dir), needs=("study",), done=_exists(export / BEST_FILE),
              cost=cost.get("export", 0)),
        # The fits need nothing, but run after the study, not against its workers for the cores.
        *(Stage(f"fit {cfg}", f"fit {cfg}", fit_config,
                (cfg, data_dir, s.fit_epochs, s.fit_args.get(cfg, {})),
                needs=("study",), done=_latest_fit(cfg), owns=(Path(LOG_DIR) / cfg,),
                cost=cost.get(f"fit {cfg}", 0)) for cfg in s.fits()),
        Stage("classifier", "frozen-encoder classifier + test report", fit_config,
              ("classifier", data_dir, s.fit_epochs,
               {"mode": "frozen", "encoder_path": str(export), "net": None}),
              needs=("export",), done=_latest_fit("classifier"), owns=(Path(LOG_DIR) / "classifier",),
              cost=cost.get("classifier", 0)),
    ]
    if s.chooses is not None:
        f = replace(s.chooses, data_dir=data_dir)
        body, folders = full_stages(f, name, s)
        # Once the encoders are kept, they are the run's input: a run continued on another machine
        # (the rows and encoders committed, the study's storage and the fits not) does not study and
        # fit again for them; the report then lists what it lacks.
        kept = f.path("encoders", "encoders.json")
        head = [replace(t, done=_either(t.done, kept)) for t in head]
    else:
        body, folders = quick_stages(s, name, data_dir)
    return [*head, *body,
            Stage("report", "report", report_stage, (name, data_dir, timer, s, *folders),
                  needs=("compare", "classifier", *(f"fit {cfg}" for cfg in s.fits())),
                  owns=(Path(REPORTS) / name,), alone=True, cost=cost.get("report", 0))]


def quick_stages(s: Scale, name: str, data_dir: str | None) -> tuple[list[Stage], tuple[str, str]]:
    """The sweeps of the study's encoder and the pretexts' and their comparison; (stages, the
    folders of the study encoder's sweep and of the comparison, for the report)."""
    export = Path(ARTIFACTS) / name
    sweeps = ["sweep", *(f"sweep {p}" for p in s.pretexts())]
    return [
        Stage("sweep", "transfer sweep", sweep, (s.sweep(str(export), data_dir),), needs=("export",),
              done=_exists(Path(TRANSFER_OUT) / SWEEP_MD), owns=(Path(TRANSFER_OUT),)),
        *(Stage(f"sweep {p}", f"transfer sweep of the {p} encoder", sweep_of, (s, p, data_dir),
                needs=(f"fit {p}",), done=_exists(Path(f"{TRANSFER_OUT}_{p}") / SWEEP_MD),
                owns=(Path(f"{TRANSFER_OUT}_{p}"),)) for p in s.pretexts()),
        Stage("compare", "compare the encoders", compare_stage, (name, s.pretexts()), needs=tuple(sweeps),
              owns=(Path(COMPARE_OUT),), alone=True),
    ], (TRANSFER_OUT, COMPARE_OUT)


def _sweep_stage(name: str, title: str, fn: Callable, args: tuple, needs: tuple[str, ...], folder: Path,
                 methods: tuple[str, ...], labels, seeds: int,
                 costs: tuple[int, float] | None = None) -> Stage:
    runs, cost = costs or fullrun.sweep_cost(methods, labels, seeds)
    return Stage(name, title, fn, args, needs=needs, done=_exists(folder / SWEEP_MD), runs=runs, cost=cost,
                 rows=folder / SWEEP_CSV)


def full_stages(f: fullrun.Full, study: str, s: Scale) -> tuple[list[Stage], tuple[str, str]]:
    """The full run after the fits (aecls.fullrun): keep the encoders, choose every setting on
    validation images, test every method on the kept encoders, compare; (stages, the folders of the
    study encoder's test sweep and of the comparison, for the report)."""
    fits = tuple(f"fit {e}" for e in fullrun.ENCODERS if e != fullrun.STUDY_ENCODER)
    every = (*f.few, *f.many)
    points = len(fullrun.grid_points(f.grid))
    stages = [Stage("keep", "keep the encoders", fullrun.keep, (f, study), needs=("export", *fits),
                    done=_exists(f.path("encoders", "encoders.json")), owns=(Path(f.out),),
                    cost=fullrun.STAGE_COST["keep"])]
    stages += [_sweep_stage(f"val {e}", f"selection: {e} on validation images", fullrun.val_sweep, (f, e),
                            ("keep",), f.path("selection", e), fullrun.methods_of(e), f.few, f.seeds)
               for e in fullrun.ENCODERS]
    stages.append(_sweep_stage("pair", "selection: the graph on the two best encoders' codes",
                               fullrun.pair_sweep, (f,), tuple(f"val {e}" for e in fullrun.ENCODERS),
                               f.path("selection", fullrun.PAIR), fullrun.GRAPH, f.few, f.seeds))
    last = fullrun.point_name(fullrun.grid_points(f.grid)[-1])  # the grid's last sweep: all done
    for b in f.few:
        runs, cost = fullrun.sweep_cost(("pseudo",), [b], f.grid_seeds)
        stages.append(Stage(f"grid {b}", f"selection: pseudo-label settings at {b} labels ({points} points)",
                            fullrun.grid_sweeps, (f, b), needs=("pair",),
                            done=_exists(f.path("selection", f"pseudo_{b}", last, SWEEP_MD)),
                            runs=runs * points, cost=cost * points))
    stages.append(Stage("choose", "choose the settings (validation rows only)", fullrun.choose, (f,),
                        needs=tuple(f"grid {b}" for b in f.few), alone=True,
                        done=_exists(f.path("selection", fullrun.CHOSEN_JSON)),
                        cost=fullrun.STAGE_COST["choose"]))
    # label propagation in rounds (issue #52): its own grid from the chosen settings, then the rounds
    points, last = len(fullrun.grid_points(f.rounds_grid)), fullrun.grid_points(f.rounds_grid)[-1]
    for b in f.few:
        runs, cost = fullrun.rounds_cost(f, b, f.grid_seeds)
        folder = f.path("selection", f"{fullrun.ROUNDS}_{b}", fullrun.point_name(last))
        stages.append(Stage(f"grid rounds {b}", f"selection: label propagation in rounds at {b} labels "
                            f"({points} points, {f.rounds_max} rounds)", fullrun.rounds_grid, (f, b),
                            needs=("choose",), done=_exists(folder / SWEEP_MD), runs=runs * points,
                            cost=cost * points))
    stages.append(Stage("choose rounds", "choose the rounds (validation rows only)", fullrun.choose_rounds,
                        (f,), needs=tuple(f"grid rounds {b}" for b in f.few), alone=True,
                        done=lambda: fullrun.rounds_chosen(f), cost=fullrun.STAGE_COST["choose"]))
    # Every test sweep waits for the choice, though only the chosen settings' need it: in one wave,
    # the long FixMatch runs start first (the list's order) and the cheap sweeps fill the cores
    # beside them, instead of a wave of cheap sweeps before a wave of FixMatch alone.
    stages += [_sweep_stage(f"{m} {b}", f"test: {m} at {b} labels, chosen settings", fullrun.semi_sweep,
                            (f, b, m), ("choose",), f.path("test", f"{m}_{b}"), (m,), [b], f.seeds)
               for m in fullrun.SEMI for b in f.few]
    stages += [_sweep_stage(f"test {e}", f"test sweep of {e}", fullrun.test_sweep, (f, e), ("choose",),
                            f.path("test", e), fullrun.methods_of(e), every, f.seeds)
               for e in fullrun.ENCODERS]
    stages += [_sweep_stage(f"chosen {b}", f"test: chosen graph and pseudo at {b} labels",
                            fullrun.chosen_sweep, (f, b), ("choose",), f.path("test", f"chosen_{b}"),
                            ("graph", "pseudo"), [b], f.seeds)
               for b in f.few]
    stages += [_sweep_stage(f"rounds {b}", f"test: rounds at {b} labels, chosen settings",
                            fullrun.rounds_sweep, (f, b), ("choose rounds",),
                            f.path("test", f"{fullrun.ROUNDS}_{b}"), (fullrun.ROUNDS,), [b], f.seeds,
                            fullrun.rounds_cost(f, b, f.seeds))
               for b in f.few]
    extra = f.extra_seeds * f.best_cells * len(f.few)
    stages += [
        Stage("extra", f"test: {f.extra_seeds} more seeds of the {f.best_cells} best cells per budget",
              fullrun.extra_seeds, (f,), needs=tuple(t.name for t in stages if t.name.startswith(
                  ("test ", "chosen ", "rounds ", *fullrun.SEMI))), runs=extra,
              cost=extra * fullrun.run_cost("pseudo", max(f.few))),  # the dearest candidate cell
        Stage("compare", "compare every test sweep (the headline's rows)", fullrun.compare, (f,),
              needs=("extra",), alone=True, cost=fullrun.STAGE_COST["compare"]),
    ]
    return stages, (str(f.path("test", fullrun.STUDY_ENCODER)), f.out)


def full_adds(s: Scale, storage: str, workers: int, data_dir: str | None) -> str:
    """What `aecls pipeline --full` measures that scale `s` does not, and its estimated wall time
    here: for the quickstart's report (without the time where the full study file is not found)."""
    added = [m for m in method_names() if m in fullrun.swept() and m not in DEFAULT_METHODS]
    encoders = [e for e in fullrun.ENCODERS if e not in ("cae", *s.pretexts())]
    try:
        stages = plan(FULL, load_study(FULL.study), storage, workers, data_dir, Stages())
        seconds = sum(wave_seconds(w, os.cpu_count() or 1) for w in waves(stages))
        time = (f"about {_hours(seconds)} on {os.cpu_count()} cores, estimated from measured per-run "
                "costs (`aecls pipeline --full --plan` lists its stages)")
    except AeclsError as e:  # run outside the repository's root: no studies/ here
        time = f"its time: `aecls pipeline --full --plan` ({e})"
    f = FULL.chooses or fullrun.Full()
    return (f"`aecls pipeline --full` adds the encoders {', '.join(encoders)} and the methods "
            f"{', '.join(added)}, fits at each config's epochs{f.describe()}, {f.seeds} seeds elsewhere: "
            f"{time}")


def _run(full: bool, fresh: bool, data_dir: str | None, show_plan: bool = False) -> Path | None:
    s = FULL if full else QUICK
    timer = Stages()
    workers, _ = side_slots()
    storage = PARALLEL_STORAGE if workers > 1 else DEFAULT_STORAGE
    spec = load_study(s.study)
    logs = Path(ARTIFACTS) / LOGS
    if show_plan:
        print(f"aecls pipeline{' --full' if full else ''}: {s.describe()}\n")
        print(plan_text(plan(s, spec, storage, workers, data_dir, timer), os.cpu_count() or 1))
        return None
    if fresh:  # only what this pipeline writes: every stage's folders, its logs, its study
        import optuna

        for p in (logs, *(p for t in plan(s, spec, storage, workers, data_dir, timer) for p in t.owns)):
            shutil.rmtree(p, ignore_errors=True)
        try:
            optuna.delete_study(study_name=spec.name, storage=make_storage(storage))
        except KeyError:
            pass  # no such study yet
    if not full:
        timer.notes["full_run"] = full_adds(s, storage, workers, data_dir)
    run_stages(plan(s, spec, storage, workers, data_dir, timer), timer, logs)
    info = timer.write(Path(ARTIFACTS) / PIPELINE_JSON, s)
    print("\n== stages: " + "; ".join(f"{r['stage'].split(' ', 1)[1]} {r['seconds']:.0f} s"
                                      + (" (reused)" if r["reused"] else " (beside others)" if r.get("side")
                                         else "") for r in info["stages"]))
    print(f"\n== pipeline done in {info['seconds']:.0f} s. Results:\n"
          f"   report:      {timer.report}\n"
          f"   study:       {ARTIFACTS}/{spec.name}/ (plots, best.json, best_encoder.pt)\n"
          f"   transfer:    {TRANSFER_OUT}/sweep.md, pretexts compared: {COMPARE_OUT}/compare.md\n"
          f"   TensorBoard: {tool_command('tensorboard', '--logdir', Path(LOG_DIR).resolve())}\n"
          f"   dashboard:   {dashboard_command(storage)}")
    return timer.report
