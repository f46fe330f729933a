"""The Optuna objective: a plain function of `trial` that trains one config and returns its score
(as in optuna-examples' pytorch_lightning_simple.py): the best epoch of the family's score
(`recon`: Family.score), of val/loss (`loss`), of the linear-probe accuracy (`probe`), or both the
score and the probe at the epoch of the best score (`multi`)."""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any

import optuna
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from optuna.artifacts import FileSystemArtifactStore
from optuna_integration import PyTorchLightningPruningCallback

from aecls.core.errors import AeclsError
from aecls.core.paths import LOG_DIR
from aecls.data.transforms import to_unit
from aecls.hpo.sampler import trial_seed
from aecls.hpo.space import model_config
from aecls.hpo.spec import StudySpec
from aecls.modules.base import GRID_IMAGES, BaseModule
from aecls.training.probe import LatentProbe
from aecls.training.train import TrainConfig, build_module, prepare, train
from aecls.training.trainer import tensorboard_logger

USER_MASTER_PORT = os.environ.get("MASTER_PORT")


def trial_config(spec: StudySpec, params: dict[str, Any], seed: int, data_dir: str | None,
                 **kwargs: Any) -> TrainConfig:
    """What a trial (or the best-trial re-run) trains: the study's model, data and trainer with
    `params` drawn, seeded with `seed`; `kwargs`: TrainConfig's logger, checkpoint, ..."""
    length = {"max_epochs": spec.epochs,
              **({"limit_train_batches": spec.train_fraction} if spec.train_fraction < 1 else {})}
    return TrainConfig(model=model_config(spec, params), data={"data_dir": data_dir, **spec.data},
                       trainer={**length, **spec.trainer}, seed=seed, **kwargs)


def trial_module(spec: StudySpec, params: dict[str, Any]) -> BaseModule:
    """The LightningModule a trial (or the best-trial re-run) trains from drawn parameters."""
    try:
        return build_module(model_config(spec, params))
    except (TypeError, AeclsError) as e:  # a config key the model does not take, a bad value
        raise AeclsError(f"study {spec.name}: {e}") from e


def checkpoint_callback(spec: StudySpec, dirpath: Path, monitor: str | None = None) -> ModelCheckpoint:
    """Keeps the epoch a trial is scored by: its first metric (val/loss for `multi`)."""
    monitor = monitor or spec.metrics[0]
    mode = "max" if spec.direction(monitor) == "maximize" else "min"
    return ModelCheckpoint(dirpath=dirpath, filename="best", monitor=monitor, mode=mode)


def objective(trial: optuna.Trial, spec: StudySpec, data_dir: str | None = None,
              log_dir: str = LOG_DIR,
              artifacts: FileSystemArtifactStore | None = None) -> float | tuple[float, ...]:
    # The trial's own seed, applied before the model is built (weights, DAE noise); the data
    # split and batch order stay the study's (`data.seed`). A re-queued trial keeps the seed of
    # the trial it retries (Optuna's retry copies user attrs), so it re-runs that very fit.
    seed = trial.user_attrs.get("seed")
    if seed is None:
        seed = trial_seed(spec.seed, trial.number)
        trial.set_user_attr("seed", seed)
    params = spec.suggest(trial)
    version = f"trial_{trial.number}"
    ckpt = checkpoint_callback(spec, Path(log_dir) / spec.name / version / "checkpoints")
    history = History(spec.metrics, spec.directions[0])
    callbacks = [LatentProbe()] if spec.uses_probe else []
    callbacks += [history]
    pruning = None
    if len(spec.metrics) == 1:  # Optuna cannot prune multi-objective trials
        pruning = PyTorchLightningPruningCallback(trial, monitor=spec.metrics[0])
        callbacks.append(pruning)
    if spec.distributed:
        # Lightning's spawn launcher leaves the port of the last trial's process group in
        # MASTER_PORT, and the next trial would reuse it while the old one may still be closing
        # (a rank then aborted); each DDP trial gets a free port unless the user set one.
        if USER_MASTER_PORT is None:
            os.environ.pop("MASTER_PORT", None)
        else:
            os.environ["MASTER_PORT"] = USER_MASTER_PORT
    cfg = trial_config(spec, params, seed, data_dir, checkpoint=ckpt, callbacks=callbacks,
                            logger=tensorboard_logger(log_dir, spec.name, version))
    run = prepare(cfg)
    grid = Path(log_dir) / spec.name / version / "reconstructions.png"
    start = time.perf_counter()
    try:
        train(cfg, run)
        if pruning is not None and spec.distributed:
            # DDP: rank 0 reported each epoch to the storage and asked every rank to stop; the
            # pruned state reaches this process only through check_pruned().
            pruning.check_pruned()
    except optuna.TrialPruned:
        if artifacts is not None:  # the dashboard shows what a pruned trial had learnt too
            upload_grid(trial, run.module, run.datamodule, grid, artifacts)
        raise
    finally:
        if spec.distributed:  # the callbacks ran in the spawned ranks: read what rank 0 reported
            history.from_trial(trial)
        # Recorded for pruned trials too: the pruning savings are counted from these.
        trial.set_user_attr("epochs_run", history.epochs)
        trial.set_user_attr("history", history.values)
        trial.set_user_attr("seconds", round(time.perf_counter() - start, 2))
        trial.set_user_attr("checkpoint", ckpt.best_model_path)
        trial.set_user_attr("device", str(run.trainer.strategy.root_device))
        trial.set_user_attr("threads", torch.get_num_threads())  # for `study best` to reproduce it
    # Every metric at the checkpointed epoch (for `multi`: the probe where val/loss was best).
    best = history.best() if spec.distributed else history.at_epoch(ckpt.best_model_score)
    if best is None or not all(math.isfinite(v) for v in best):
        # A NaN/inf loss says nothing about the config's quality; prune it and let the study go on.
        raise optuna.TrialPruned(f"{spec.metrics} not finite")
    if artifacts is not None:
        upload_grid(trial, run.module, run.datamodule, grid, artifacts)
    return best[0] if len(best) == 1 else best


class History(Callback):
    """Each validation epoch's metrics, the epoch a trial was pruned in included (this runs
    before the pruning callback raises in the same hook, and Lightning's own epoch counter has
    not moved on then). Read in on_validation_end: only then are the epoch means computed."""

    def __init__(self, metrics: tuple[str, ...], direction: str = "minimize") -> None:
        self.metrics, self.direction = metrics, direction
        self.values: dict[str, list[float]] = {m: [] for m in metrics}

    @property
    def epochs(self) -> int:
        return len(self.values[self.metrics[0]])

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking:
            return
        for m in self.metrics:
            v = trainer.callback_metrics.get(m)
            self.values[m].append(float("nan") if v is None else float(v))

    def from_trial(self, trial: optuna.Trial) -> None:
        """The single metric's epochs as the pruning callback reported them (a DDP trial)."""
        frozen = next(t for t in trial.study.get_trials(deepcopy=False) if t.number == trial.number)
        steps = frozen.intermediate_values
        self.values = {self.metrics[0]: [steps[k] for k in sorted(steps)]}

    def best(self) -> tuple[float, ...] | None:
        """The best epoch's value of the single metric (what its checkpoint keeps)."""
        values = [v for v in self.values[self.metrics[0]] if math.isfinite(v)]
        if not values:
            return None
        return (max(values) if self.direction == "maximize" else min(values),)

    def at_epoch(self, score) -> tuple[float, ...] | None:
        """All metrics of the first epoch whose first metric equals the checkpoint's `score`."""
        if score is None:
            return None
        first = self.values[self.metrics[0]]
        i = next((i for i, v in enumerate(first) if v == float(score)), None)
        return None if i is None else tuple(self.values[m][i] for m in self.metrics)


def upload_grid(trial: optuna.Trial, module, dm, path: Path, store: FileSystemArtifactStore) -> None:
    """Save the trial's image grid (validation inputs / outputs) as PNG and attach it to the trial,
    so optuna-dashboard shows it."""
    from torchvision.utils import save_image

    if not dm.splits:  # a DDP trial set up its data in the spawned ranks only
        dm.setup()
    x = to_unit(dm.splits["val"][0][:GRID_IMAGES]).to(module.device)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(module.image_grid(x), path)
    optuna.artifacts.upload_artifact(artifact_store=store, file_path=str(path), study_or_trial=trial)
