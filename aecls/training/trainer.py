"""Trainers for programmatic fits (studies, re-runs, benchmarks): quiet by default, so a short trial
pays no per-step progress-bar or model-summary cost."""

from __future__ import annotations

import atexit
import sys
from typing import Any

import lightning as L
import torch.distributed as dist
from lightning.pytorch.loggers import TensorBoardLogger

from aecls.core.progress import EpochLines, bar_here, in_terminal
from aecls.modules.speed import SPEED_KEYS, Speed


def tensorboard_logger(save_dir: str, name: str, version: int | str | None = None) -> TensorBoardLogger:
    """The TensorBoard logger of every aecls run: its `hp_metric` is the family's score, declared by
    the module at fit start (BaseModule.on_fit_start), so no -1 placeholder (Lightning's default)."""
    return TensorBoardLogger(save_dir, name=name, version=version, default_hp_metric=False)


def _destroy_group() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


class GlooExit(L.Callback):
    """Destroys a gloo process group (CPU DDP) before its process exits. Why: Lightning registers
    that at exit for NCCL only; a gloo group left to the interpreter's shutdown sometimes aborts a
    rank after its fit has ended ("terminate called without an active exception", SIGABRT), which
    fails the whole run. Registered once per process, when a fit sets the group up."""

    registered = False

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if not GlooExit.registered and dist.is_available() and dist.is_initialized() \
                and dist.get_backend() == "gloo":
            atexit.register(_destroy_group)
            GlooExit.registered = True


def quiet_lightning() -> None:
    """Silence Lightning's per-run banners (GPU available..., tips) and a deprecation warning it
    raises itself: a study prints them once per trial otherwise."""
    import logging
    import warnings

    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    # A tiny epoch has fewer steps than the logging interval; training metrics are logged per epoch.
    warnings.filterwarnings("ignore", message=".*smaller than the logging interval.*")


def make_trainer(max_epochs: int | None, *, quiet: bool = True, logger: Any = False,
                 checkpointing: bool = False, callbacks: list | None = None, devices: Any = 1,
                 progress: bool | None = None, **kwargs: Any) -> L.Trainer:
    """A Lightning Trainer on one device unless `devices` says otherwise (Lightning's "auto" would
    take every GPU of the host and launch DDP inside a study); `kwargs` pass through
    (accelerator, strategy, limit_*_batches, precision, num_sanity_val_steps, ...) and win over
    these defaults, but for aecls.modules.speed's options (`SPEED_KEYS`: channels_last, fused_optimizer),
    which build the `Speed` callback unless `callbacks` holds one; `progress`
    shows Lightning's bar even when `quiet` (default: not quiet), in a terminal; elsewhere a fit that
    is not quiet prints a line per epoch instead (EpochLines), unless `progress` is False.
    `aecls fit|validate` build their Trainer here too (aecls.cli.fit.cli_trainer)."""
    if quiet:
        quiet_lightning()
    callbacks = list(callbacks or [])
    speed = {k: kwargs.pop(k) for k in SPEED_KEYS if k in kwargs}  # Speed's own defaults otherwise
    if not any(isinstance(c, Speed) for c in callbacks):
        callbacks.append(Speed(**speed))
    callbacks.append(GlooExit())
    # A fit's progress in a log: a line per epoch, unless progress was turned off on purpose.
    if not quiet and progress is not False and not in_terminal(sys.stdout):
        callbacks.append(EpochLines())
    args = {"devices": devices, "max_epochs": max_epochs, "logger": logger,
            "enable_checkpointing": checkpointing,
            "enable_progress_bar": bar_here(not quiet if progress is None else progress),
            "enable_model_summary": not quiet, "num_sanity_val_steps": 0 if quiet else 2}
    return L.Trainer(**{**args, **kwargs, "callbacks": callbacks})
