"""The Optuna objective: a plain function of `trial` that trains one config and returns its best
val/loss (as in optuna-examples' pytorch_lightning_simple.py)."""

from __future__ import annotations

import math
import time
from pathlib import Path

import optuna
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.loggers import TensorBoardLogger
from optuna.artifacts import FileSystemArtifactStore
from optuna_integration import PyTorchLightningPruningCallback

from aecls.data import FashionMNISTDataModule
from aecls.hpo.space import StudySpec
from aecls.modules.base import GRID_IMAGES
from aecls.training import make_trainer

MONITOR = "val/loss"


def objective(trial: optuna.Trial, spec: StudySpec, data_dir: str | None = None,
              log_dir: str = "lightning_logs", accelerator: str = "auto",
              artifacts: FileSystemArtifactStore | None = None) -> float:
    params = spec.suggest(trial)
    module = spec.build_module(params)
    dm = FashionMNISTDataModule(data_dir=data_dir, **spec.data)
    version = f"trial_{trial.number}"
    ckpt = ModelCheckpoint(dirpath=Path(log_dir) / spec.name / version / "checkpoints",
                           filename="best", monitor=MONITOR)
    epochs = EpochCounter()
    trainer = make_trainer(
        spec.epochs, logger=TensorBoardLogger(log_dir, name=spec.name, version=version),
        checkpointing=True, accelerator=accelerator,
        callbacks=[epochs, ckpt, PyTorchLightningPruningCallback(trial, monitor=MONITOR)],
    )
    start = time.perf_counter()
    try:
        trainer.fit(module, datamodule=dm)
    finally:
        # Recorded for pruned trials too: the pruning savings are counted from these.
        trial.set_user_attr("epochs_run", epochs.count)
        trial.set_user_attr("seconds", round(time.perf_counter() - start, 2))
        trial.set_user_attr("checkpoint", ckpt.best_model_path)
    score = ckpt.best_model_score
    if score is None or not math.isfinite(float(score)):
        # A NaN/inf loss says nothing about the config's quality; prune it and let the study go on.
        raise optuna.TrialPruned(f"{MONITOR} is not finite")
    if artifacts is not None:
        upload_grid(trial, module, dm, Path(log_dir) / spec.name / version / "reconstructions.png",
                    artifacts)
    return float(score)


class EpochCounter(Callback):
    """Epochs that reached validation, the one a trial was pruned in included (the pruning
    callback raises before Lightning's own epoch counter moves on)."""

    count = 0

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            self.count += 1


def upload_grid(trial: optuna.Trial, module, dm, path: Path, store: FileSystemArtifactStore) -> None:
    """Save the trial's image grid (validation inputs / outputs) as PNG and attach it to the trial,
    so optuna-dashboard shows it."""
    from torchvision.utils import save_image

    x = dm.splits["val"][0][:GRID_IMAGES].unsqueeze(1).float().div(255).to(module.device)
    save_image(module.image_grid(x), path)
    optuna.artifacts.upload_artifact(artifact_store=store, file_path=str(path), study_or_trial=trial)
