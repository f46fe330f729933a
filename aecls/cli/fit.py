"""`aecls fit|validate`: LightningCLI over every aecls module and the one DataModule. It parses the
flags and the YAML (and `--print_config`); `fit` hands what it built to `aecls.training.train.train`, the
one training function."""

from __future__ import annotations

import warnings
from argparse import ArgumentError
from pathlib import Path

import lightning as L
from jsonargparse import Namespace
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from aecls.core.errors import AeclsError
from aecls.core.paths import FIT_LAST_GLOB, LOG_DIR, read_config
from aecls.data import FashionMNISTDataModule
from aecls.modules import BaseModule
from aecls.modules.speed import Speed
from aecls.training.train import FIT_CHECKPOINT, TrainConfig, evaluate, train
from aecls.training.trainer import make_trainer

# --ckpt_path values Lightning resolves itself (no file to check); `last` is aecls's (resolve_last).
LIGHTNING_CKPT_WORDS = ("best", "hpc", "registry")


class AeclsCLI(LightningCLI):
    """LightningCLI with the defaults every config shares, so a config holds only what differs:
    a TensorBoardLogger in LOG_DIR/<config name> (unless `trainer.logger` is given), a
    ModelCheckpoint on val/loss (best + last), the speed options (`--speed.channels_last`,
    `--speed.fused_optimizer`: aecls.modules.speed), `--test_after_fit` (on),
    and `--ckpt_path last` that resumes the newest run."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.set_defaults({f"checkpoint.{k}": v for k, v in FIT_CHECKPOINT.items()})
        parser.add_lightning_class_args(Speed, "speed")
        parser.add_argument("--test_after_fit", type=bool, default=True,
                            help="after fit, test the best checkpoint: its test/* metrics are printed "
                                 "and logged to the fit's TensorBoard run")

    def _prepare_subcommand_parser(self, klass: type, subcommand: str, **kwargs) -> LightningArgumentParser:
        # Lightning's own help for --ckpt_path does not know aecls's `last` (resolve_last).
        parser = super()._prepare_subcommand_parser(klass, subcommand, **kwargs)
        for action in parser._actions:
            if "--ckpt_path" in action.option_strings and subcommand == "fit":
                action.help = ("checkpoint to resume from: a path, or `last` = the newest last.ckpt of "
                               "this config's runs (lightning_logs/CONFIG/version_*), resumed in its "
                               "own log version")
        return parser

    def before_instantiate_classes(self) -> None:
        cfg = self.config[self.subcommand]
        if cfg.trainer.get("logger") in (None, True):
            configs = cfg.get("config") or []
            name = Path(str(configs[-1])).stem if configs else "lightning_logs"
            cfg.trainer.logger = Namespace(class_path="lightning.pytorch.loggers.TensorBoardLogger",
                                           init_args=Namespace(save_dir=LOG_DIR, name=name,
                                                               default_hp_metric=False))
        ckpt = cfg.get("ckpt_path")
        if ckpt == "last":
            resolve_last(cfg)
        elif ckpt is not None and ckpt not in LIGHTNING_CKPT_WORDS and not Path(ckpt).is_file():
            raise AeclsError(f"--ckpt_path {ckpt}: no such checkpoint file (or `last`: the newest "
                             "last.ckpt of this config's runs)")

    def _instantiate_trainer(self, config: dict, callbacks: list) -> L.Trainer:
        # Lightning merges the config's callbacks, the CLI's (checkpoint, speed) and its save-config
        # one; the Trainer itself comes from aecls's one factory (the parser still reads L.Trainer).
        self.trainer_class = cli_trainer
        return super()._instantiate_trainer(config, callbacks)

    def validate(self, model: BaseModule, datamodule: FashionMNISTDataModule | None = None,
                 ckpt_path: str | None = None, **_: object) -> None:
        """The validate subcommand: the objects LightningCLI built, validated by `evaluate`."""
        evaluate(TrainConfig(model=model, data=datamodule, trainer=self.trainer, seed=None,
                             ckpt_path=ckpt_path), "validate", verbose=True)

    def fit(self, model: BaseModule, datamodule: FashionMNISTDataModule | None = None,
            ckpt_path: str | None = None, **_: object) -> None:
        """The fit subcommand (LightningCLI calls a method of this name instead of Trainer.fit):
        the objects LightningCLI built from the flags and YAML, trained by `train`."""
        test = "report" if self.config.fit.test_after_fit else None
        result = train(TrainConfig(model=model, data=datamodule, trainer=self.trainer, seed=None,
                                   ckpt_path=ckpt_path, test=test, quiet=False))
        if test is None and self.trainer.is_global_zero:
            print(f"best checkpoint: {result.best_path}")


def cli_trainer(**config) -> L.Trainer:
    """The Trainer of `aecls fit|validate`, from LightningCLI's parsed `trainer:` section, through
    make_trainer (the callbacks every aecls Trainer has; outside a terminal a line per epoch instead
    of the bar's frames, unless the bar was turned off on purpose)."""
    return make_trainer(config.pop("max_epochs"), quiet=False, logger=config.pop("logger"),
                        devices=config.pop("devices"), callbacks=config.pop("callbacks"),
                        progress=config.pop("enable_progress_bar"), **config)


def resolve_last(cfg) -> None:
    """`--ckpt_path last`: resume the newest run of this config's logger, in the same log version.

    (Lightning alone would look in the new run's empty version directory and start from scratch.)
    """
    logger = cfg.trainer.get("logger")
    init = getattr(logger, "init_args", None)
    if init is None:
        raise AeclsError("--ckpt_path last needs a TensorBoardLogger in the config (trainer.logger)")
    root = Path(init.save_dir) / (init.get("name") or "lightning_logs")  # TensorBoardLogger's default name
    runs = sorted(root.glob(FIT_LAST_GLOB), key=lambda p: p.stat().st_mtime)
    if not runs:
        raise AeclsError(f"--ckpt_path last: no last.ckpt under {root}/version_*/checkpoints to resume")
    cfg.ckpt_path = str(runs[-1])
    init.version = runs[-1].parts[-3]  # keep logging into the interrupted run
    print(f"resuming {cfg.ckpt_path}")


def _check_model_classes(argv: list[str]) -> None:
    """A config file whose model is no registered family: one line naming the file, the class and
    the known ones (jsonargparse would print its usage and a multi-line import error)."""
    from aecls.training.train import module_class

    for i, arg in enumerate(argv):
        path = argv[i + 1] if arg in ("--config", "-c") and i + 1 < len(argv) else None
        path = arg.split("=", 1)[1] if arg.startswith("--config=") else path
        if path is None or not Path(path).is_file():
            continue
        try:
            model = read_config(path)["model"]
        except AeclsError:
            continue  # LightningCLI says what is wrong with the file itself
        if model.get("class_path"):
            module_class(model, where=path)  # the train function's own check and message


def run_lightning(argv: list[str]) -> None:
    """`aecls fit|validate ARGS...` (Lightning's DDP launcher re-runs the command line once per rank).
    Library callers train with `aecls.training.train` instead; `argv` is for the entry point and tests."""
    _check_model_classes(argv)
    # `argv` is the command line (or a test's): LightningCLI warns whenever it is given one.
    warnings.filterwarnings("ignore", message="LightningCLI's args parameter")
    # The modules configure their own optimiser (`optim`): LightningCLI's --optimizer and
    # --lr_scheduler would silently replace it.
    try:
        # exit_on_error off: a bad flag or config raises here, to be said in one line (jsonargparse
        # would print the whole usage, some 80 lines, before its message)
        AeclsCLI(BaseModule, FashionMNISTDataModule, subclass_mode_model=True, args=argv,
                 auto_configure_optimizers=False, save_config_kwargs={"overwrite": True},
                 seed_everything_default=0, parser_kwargs={"exit_on_error": False})
    except ArgumentError as e:
        command = " ".join(["aecls", *argv[:1]])
        said = " ".join(line.strip() for line in str(e).splitlines() if line.strip())
        raise AeclsError(f"{said} (see `{command} --help`)") from None
