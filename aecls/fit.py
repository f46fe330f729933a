"""`aecls fit|validate`: LightningCLI over every aecls module and the one DataModule, as a library
function (`run_lightning(argv)`) that the command line and the pipeline both call."""

from __future__ import annotations

import sys
from pathlib import Path

from jsonargparse import Namespace
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from aecls.data import FashionMNISTDataModule
from aecls.errors import AeclsError
from aecls.evaluate import evaluate_checkpoint
from aecls.modules import BaseModule
from aecls.paths import LOG_DIR
from aecls.speed import Speed


class AeclsCLI(LightningCLI):
    """LightningCLI with the defaults every config shares, so a config holds only what differs:
    a TensorBoardLogger in LOG_DIR/<config name> (unless `trainer.logger` is given), a
    ModelCheckpoint on val/loss (best + last), the speed options (`--speed.channels_last`,
    `--speed.fused_optimizer`, aecls.speed), `--test_after_fit` (on), and `--ckpt_path last`
    that resumes the newest run."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.set_defaults({"checkpoint.monitor": "val/loss", "checkpoint.save_last": True,
                             "checkpoint.filename": "best-{epoch}"})
        parser.add_lightning_class_args(Speed, "speed")
        parser.add_argument("--test_after_fit", type=bool, default=True,
                            help="after fit, test the best checkpoint and print its metrics")

    def before_instantiate_classes(self) -> None:
        cfg = self.config[self.subcommand]
        if cfg.trainer.get("logger") in (None, True):
            configs = cfg.get("config") or []
            name = Path(str(configs[-1])).stem if configs else "lightning_logs"
            cfg.trainer.logger = Namespace(class_path="lightning.pytorch.loggers.TensorBoardLogger",
                                           init_args=Namespace(save_dir=LOG_DIR, name=name))
        if cfg.get("ckpt_path") == "last":
            resolve_last(cfg)

    def after_fit(self) -> None:
        if self.trainer.world_size > 1:
            # Under DDP, rank 0 alone prints and tests, in one process: the fit's process
            # group goes, so the test's own trainer waits for no other rank.
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()
            if not self.trainer.is_global_zero:
                return
        best = self.trainer.checkpoint_callback.best_model_path
        print(f"best checkpoint: {best}")
        if self.config.fit.test_after_fit and best:
            evaluate_checkpoint(best, self.datamodule.hparams.data_dir)


def resolve_last(cfg) -> None:
    """`--ckpt_path last`: resume the newest run of this config's logger, in the same log version.

    (Lightning alone would look in the new run's empty version directory and start from scratch.)
    """
    logger = cfg.trainer.get("logger")
    init = getattr(logger, "init_args", None)
    if init is None:
        raise AeclsError("--ckpt_path last needs a TensorBoardLogger in the config (trainer.logger)")
    root = Path(init.save_dir) / (init.get("name") or "lightning_logs")  # TensorBoardLogger's default name
    runs = sorted(root.glob("version_*/checkpoints/last.ckpt"), key=lambda p: p.stat().st_mtime)
    if not runs:
        raise AeclsError(f"--ckpt_path last: no last.ckpt under {root}/version_*/checkpoints to resume")
    cfg.ckpt_path = str(runs[-1])
    init.version = runs[-1].parts[-3]  # keep logging into the interrupted run
    print(f"resuming {cfg.ckpt_path}")


def run_lightning(argv: list[str]) -> None:
    """`aecls fit|validate ARGS...` as a function. LightningCLI reads the command line itself (and
    Lightning's DDP launcher re-runs it once per rank), so `argv` stands in for it during the call:
    a pipeline stage re-runs as that one fit, not as the whole pipeline."""
    saved = sys.argv
    sys.argv = [saved[0], *argv]
    try:
        # The modules configure their own optimiser (`optim`): LightningCLI's --optimizer and
        # --lr_scheduler would silently replace it.
        AeclsCLI(BaseModule, FashionMNISTDataModule, subclass_mode_model=True,
                 auto_configure_optimizers=False, save_config_kwargs={"overwrite": True},
                 seed_everything_default=0)
    finally:
        sys.argv = saved
