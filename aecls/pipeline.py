"""The whole chain in one command: study -> best-trial re-run -> autoencoder fits -> transfer sweep
-> classifier test -> report. Finished stages are found on disk and skipped (the study continues
to its total), unless `fresh`. Small honest defaults; `full` gives the seed-report scale."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from aecls.cli import main as aecls
from aecls.errors import AeclsError
from aecls.report.build import latest


@dataclass(frozen=True)
class Scale:
    study: str
    seeds: int
    fit_epochs: int | None  # None: each config's own
    labels: str
    sweep_seeds: int
    sweep_epochs: int


QUICK = Scale("studies/quickstart.yaml", 1, 3, "100,1000,10000", 2, 5)
FULL = Scale("studies/cae_seed004.yaml", 3, None, "100,1000,10000,all", 3, 10)


def _run(argv: list[str]) -> None:
    if aecls(argv) != 0:
        raise AeclsError(f"pipeline stage failed: aecls {' '.join(argv)}")


def stage(title: str, done: Path | None = None):
    """Print the stage; return False (skip) if `done` already exists."""
    if done is not None and done.exists():
        print(f"\n== {title}: already done ({done}); skipped")
        return False
    print(f"\n== {title}", flush=True)
    return True


def run_pipeline(full: bool = False, fresh: bool = False, data_dir: str | None = None) -> Path:
    s = FULL if full else QUICK
    name = Path(s.study).stem
    if fresh:  # only what this pipeline writes
        import optuna

        from aecls.hpo.run import DEFAULT_STORAGE

        for p in (Path("artifacts") / name, Path("artifacts/transfer"), Path("reports") / name,
                  *(Path("lightning_logs") / d for d in (name, "cae", "dae", "vae", "classifier"))):
            shutil.rmtree(p, ignore_errors=True)
        try:
            optuna.delete_study(study_name=name, storage=DEFAULT_STORAGE)
        except KeyError:
            pass  # no such study yet
    data = ["--data-dir", data_dir] if data_dir else []  # aecls subcommands
    fit_data = ["--data.data_dir", data_dir] if data_dir else []  # LightningCLI fits
    start = time.perf_counter()
    stage(f"1/6 study {name} (continues an earlier run)")
    _run(["study", "run", s.study, "--no-progress", *data])
    if stage("2/6 re-run the best trial, export its encoder", Path("artifacts") / name / "best.json"):
        _run(["study", "best", s.study, "--seeds", str(s.seeds), *data])
    for cfg in ("cae", "dae", "vae"):
        if stage(f"3/6 fit {cfg}", latest(Path("lightning_logs"), cfg)):
            epochs = ["--trainer.max_epochs", str(s.fit_epochs)] if s.fit_epochs else []
            extra = ["--model.init_args.nll_samples", "20"] if (cfg == "vae" and not full) else []
            _run(["fit", "--config", f"configs/{cfg}.yaml", "--trainer.enable_progress_bar", "false",
                  "--trainer.enable_model_summary", "false", *epochs, *extra, *fit_data])
    sweep = Path("artifacts/transfer/sweep.csv")
    if stage("4/6 transfer sweep", sweep):
        _run(["transfer", "sweep", "--encoder", f"artifacts/{name}", "--labels", s.labels,
              "--seeds", str(s.sweep_seeds), "--epochs", str(s.sweep_epochs), *data])
    if stage("5/6 frozen-encoder classifier + test report", latest(Path("lightning_logs"), "classifier")):
        epochs = ["--trainer.max_epochs", str(s.fit_epochs)] if s.fit_epochs else []
        _run(["fit", "--config", "configs/classifier.yaml", "--model.init_args.mode", "frozen",
              "--model.init_args.encoder_path", f"artifacts/{name}", "--model.init_args.net", "null",
              "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
              *epochs, *fit_data])
    stage("6/6 report")
    _run(["report", "--name", name, "--study", name, *data])
    report = Path("reports") / name / "report.md"
    print(f"\n== pipeline done in {time.perf_counter() - start:.0f} s. Results:\n"
          f"   report:      {report}\n   study:       artifacts/{name}/ (plots, best.json, best_encoder.pt)\n"
          f"   transfer:    artifacts/transfer/sweep.md\n"
          f"   TensorBoard: .venv/bin/tensorboard --logdir lightning_logs\n"
          f"   dashboard:   .venv/bin/optuna-dashboard sqlite:///optuna.db --artifact-dir optuna_artifacts")
    return report
