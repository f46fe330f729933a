"""The whole chain in one command: study -> best-trial re-run -> autoencoder and SimCLR fits ->
transfer sweeps (the study's encoder, the DAE's, SimCLR's) and their comparison -> classifier test
-> report. Finished stages are found on disk and skipped (the study continues
to its total), unless `fresh`. Small honest defaults; `full` runs studies/cae_seed004.yaml at full scale."""

from __future__ import annotations

import json
import os
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from aecls.encoders import stale_export
from aecls.errors import AeclsError
from aecls.hpo.best import format_best, rerun_best
from aecls.hpo.run import DONE, open_study, run_study
from aecls.hpo.space import load_study
from aecls.hpo.storage import dashboard_args
from aecls.hpo.summary import study_outputs
from aecls.modules.registry import ENCODER_KINDS, families, of_kind
from aecls.paths import (
    ARTIFACTS,
    BEST_FILE,
    COMPARE_OUT,
    DEFAULT_STORAGE,
    LOG_DIR,
    PIPELINE_JSON,
    PIPELINE_LOCK,
    REPORTS,
    SWEEP_CSV,
    TRANSFER_OUT,
    find_config,
    tool_command,
)
from aecls.report.build import build_report, latest
from aecls.train import load_train_config, train
from aecls.transfer.compare import compare_sweeps
from aecls.transfer.config import SweepConfig
from aecls.transfer.sweep import markdown_table, run_sweep


@dataclass(frozen=True)
class Scale:
    study: str
    seeds: int
    fit_epochs: int | None  # None: each config's own
    labels: tuple[int | None, ...]  # label budgets of the sweep; None = all
    sweep_seeds: int
    sweep_epochs: int




def fits() -> list[str]:
    """The families fitted in stage 3 (configs/<name>.yaml): every one whose encoder transfers."""
    return [f.name for f in of_kind(*ENCODER_KINDS)]


def pretexts() -> list[str]:
    """The fits whose encoders are swept beside the study's (frozen, fine-tuned) and compared."""
    return [f.name for f in families().values() if f.compared]
QUICK = Scale("studies/quickstart.yaml", 1, 3, (100, 1000, 10000), 2, 5)
FULL = Scale("studies/cae_seed004.yaml", 3, None, (100, 1000, 10000, None), 3, 10)


def fit(config: str, data_dir: str | None, epochs: int | None, **init_args) -> None:
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
        self._open: tuple[str, float] | None = None
        self.start = time.perf_counter()

    def _close(self) -> None:
        if self._open is not None:
            title, t0 = self._open
            seconds = round(time.perf_counter() - t0, 1)
            self.rows.append({"stage": title, "seconds": seconds, "reused": None})
            print(f"   ({title}: {seconds:.0f} s)", flush=True)
            self._open = None

    def __call__(self, title: str, done: Path | None = None) -> bool:
        """Start stage `title`; False (skip it) if `done` already exists."""
        self._close()
        if done is not None and done.exists():
            print(f"\n== {title}: already done; reusing {done}")
            self.rows.append({"stage": title, "seconds": 0.0, "reused": str(done)})
            return False
        print(f"\n== {title}", flush=True)
        self._open = (title, time.perf_counter())
        return True

    def write(self, path: Path, scale: str) -> dict:
        self._close()
        import platform

        import torch

        gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
        info = {"scale": scale, "stages": self.rows, "seconds": round(time.perf_counter() - self.start, 1),
                "machine": {"cores": os.cpu_count(), "torch_threads": torch.get_num_threads(), "gpu": gpu,
                            "cpu": platform.processor() or platform.machine()}}
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(info, indent=2))
        return info


@contextmanager
def folder_lock(path: Path = Path(PIPELINE_LOCK)):
    """One pipeline per folder: a second one started here says which process holds it."""
    import fcntl

    f = open(path, "a+")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        holder = f.read().strip() or "unknown"
        f.close()
        raise AeclsError(f"this folder is in use by another aecls pipeline (pid {holder}); wait for it "
                         "or run in another folder") from None
    try:
        f.truncate(0)
        f.write(str(os.getpid()))
        f.flush()
        yield
    finally:
        fcntl.flock(f, fcntl.LOCK_UN)
        f.close()


def _study_progress(spec) -> str:
    """How far the pipeline's study is: fresh, or continuing an earlier run (read only)."""
    try:
        study = open_study(spec, create=False, allow_changes=True)
    except AeclsError:  # no storage or no study yet
        return f"{spec.n_trials} trials"
    done = len(study.get_trials(deepcopy=False, states=DONE))
    return f"continues an earlier run ({done} of {spec.n_trials} trials done)"


def run_pipeline(full: bool = False, fresh: bool = False, data_dir: str | None = None) -> Path:
    with folder_lock():
        return _run(full, fresh, data_dir)


def _run(full: bool, fresh: bool, data_dir: str | None) -> Path:
    s = FULL if full else QUICK
    stage = Stages()
    name = Path(s.study).stem
    if fresh:  # only what this pipeline writes
        import optuna

        for p in (Path(ARTIFACTS) / name, Path(TRANSFER_OUT), Path(COMPARE_OUT), Path(REPORTS) / name,
                  *(Path(f"{TRANSFER_OUT}_{p}") for p in pretexts()),
                  *(Path(LOG_DIR) / d for d in (name, *fits(), "classifier"))):
            shutil.rmtree(p, ignore_errors=True)
        try:
            optuna.delete_study(study_name=name, storage=DEFAULT_STORAGE)
        except KeyError:
            pass  # no such study yet
    spec = load_study(s.study)
    stage(f"1/6 study {name}: {_study_progress(spec)}")
    study = run_study(spec, data_dir=data_dir, progress=True)
    print(study_outputs(spec, study, Path(ARTIFACTS) / name)[0])
    export = Path(ARTIFACTS) / name
    if stale_export(export):  # the study was continued past its export: export its best again
        (export / BEST_FILE).unlink()
    if stage("2/6 re-run the best trial, export its encoder", export / BEST_FILE):
        print(format_best(rerun_best(spec, open_study(spec), s.seeds, data_dir)))
    for cfg in fits():
        if stage(f"3/6 fit {cfg}", latest(Path(LOG_DIR), cfg)):
            # the VAE's test NLL: 20 importance samples, not 100, at the quick scale
            fit(cfg, data_dir, s.fit_epochs, **({"nll_samples": 20} if cfg == "vae" and not full else {}))
    sweep = Path(TRANSFER_OUT) / SWEEP_CSV
    if stage("4/6 transfer sweep", sweep):
        cfg = SweepConfig(encoder=f"{ARTIFACTS}/{name}", labels=list(s.labels), seeds=s.sweep_seeds,
                          epochs=s.sweep_epochs, data_dir=data_dir)
        rows = run_sweep(cfg, progress=False)
        print(markdown_table(rows))
    for pretext in pretexts():  # the other pretexts' encoders, for the comparison
        out = Path(f"{TRANSFER_OUT}_{pretext}")
        if stage(f"4/6 transfer sweep of the {pretext} encoder", out / SWEEP_CSV):
            cfg = SweepConfig(encoder=str(latest(Path(LOG_DIR), pretext)), labels=list(s.labels),
                              seeds=s.sweep_seeds, epochs=s.sweep_epochs, data_dir=data_dir,
                              methods=("frozen", "finetune"), out=str(out))
            print(markdown_table(run_sweep(cfg, progress=False)))
    stage("4/6 compare the encoders")
    compare_sweeps([(f"cae ({name})", TRANSFER_OUT), *((p, f"{TRANSFER_OUT}_{p}") for p in pretexts())],
                   COMPARE_OUT)
    if stage("5/6 frozen-encoder classifier + test report", latest(Path(LOG_DIR), "classifier")):
        fit("classifier", data_dir, s.fit_epochs, mode="frozen", encoder_path=f"{ARTIFACTS}/{name}", net=None)
    times = Path(ARTIFACTS) / PIPELINE_JSON
    stage.write(times, "full" if full else "quick")  # what the report's stage table reads
    stage("6/6 report")
    report = build_report(name, study_name=name, data_dir=data_dir)
    info = stage.write(times, "full" if full else "quick")
    print("\n== stages: " + "; ".join(f"{r['stage'].split(' ', 1)[1]} {r['seconds']:.0f} s"
                                      + (" (reused)" if r["reused"] else "") for r in info["stages"]))
    print(f"\n== pipeline done in {info['seconds']:.0f} s. Results:\n"
          f"   report:      {report}\n"
          f"   study:       {ARTIFACTS}/{name}/ (plots, best.json, best_encoder.pt)\n"
          f"   transfer:    {TRANSFER_OUT}/sweep.md, pretexts compared: {COMPARE_OUT}/compare.md\n"
          f"   TensorBoard: {tool_command('tensorboard', '--logdir', LOG_DIR)}\n"
          f"   dashboard:   {tool_command('optuna-dashboard', *dashboard_args(DEFAULT_STORAGE))}")
    return report
