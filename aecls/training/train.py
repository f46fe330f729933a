"""One function that trains, and tests, a model from its config: `train(TrainConfig)`.

`aecls fit` (LightningCLI parses the flags and YAML, then hands its objects here), a study trial,
`study best`, a transfer sweep's runs, the pipeline's fits and the benchmarks all call it: the
data, the module (built through the family registry), the Trainer with its speed options, the
callbacks, the logger, the checkpoint, the interrupt and the test are assembled in this one place.
Beside it `evaluate(TrainConfig)` tests or validates without fitting (`aecls test` through
`evaluate_checkpoint`, `aecls validate`), building everything the same way. A config file
(configs/NAME.yaml, the format `aecls fit --config` reads) loads into a TrainConfig
with `load_train_config`, so a library caller needs no command line.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import instantiate_class

from aecls.core.errors import AeclsError, FitInterrupted, check
from aecls.core.paths import FIT_BEST, LOG_DIR, read_config
from aecls.data import FashionMNISTDataModule
from aecls.modules import BaseModule
from aecls.modules.base import check_resume
from aecls.modules.encoders import read_checkpoint
from aecls.modules.registry import family, module_classes
from aecls.training.checkpoints import load_datamodule, load_module
from aecls.training.trainer import make_trainer, tensorboard_logger

# The checkpoint every config-file fit keeps (`aecls fit` and the pipeline): the best epoch on
# val/loss and last.ckpt (what `--ckpt_path last` resumes).
FIT_CHECKPOINT = {"monitor": "val/loss", "save_last": True, "filename": FIT_BEST}
TESTS = (None, "best", "final", "report")


@dataclass
class TrainConfig:
    """One training run.

    Args:
        model: a built module, or {"family": NAME, "init_args": {...}} (a registered family), or a
            config file's {"class_path": ..., "init_args": {...}}.
        data: a DataModule, or FashionMNISTDataModule arguments.
        trainer: Trainer arguments (max_epochs, max_steps, accelerator, precision, the speed keys
            channels_last / fused_optimizer, ...) or a Trainer LightningCLI built from them.
        seed: seed_everything before the module and data are built (None: the caller seeded).
        logger: a Lightning logger, or False.
        checkpoint: the ModelCheckpoint that keeps the epoch the run is scored by (None: none).
        callbacks: more callbacks (a pruner, a probe, a history).
        ckpt_path: resume from this checkpoint.
        test: None; "best" (the checkpoint's epoch) or "final" (the weights at the end), tested
            in this process; "report": `aecls test` on the best checkpoint (printed, baselines,
            a classifier's per-class report), what `aecls fit` does after its fit.
        quiet: no progress bar, model summary or sanity check (programmatic runs).
        data_hook: `hook(module, datamodule)` -> the DataModule the run uses, given the built
            module (a frozen encoder's head trains on codes computed once: Classifier.codes_once).
    """

    model: BaseModule | dict[str, Any]
    data: FashionMNISTDataModule | dict[str, Any] = field(default_factory=dict)
    trainer: dict[str, Any] | L.Trainer = field(default_factory=dict)
    seed: int | None = 0
    logger: Any = False
    checkpoint: ModelCheckpoint | None = None
    callbacks: list = field(default_factory=list)
    ckpt_path: str | None = None
    test: str | None = None
    quiet: bool = True
    data_hook: Callable[[BaseModule, FashionMNISTDataModule], FashionMNISTDataModule] | None = None


@dataclass
class TrainResult:
    module: BaseModule
    datamodule: FashionMNISTDataModule
    trainer: L.Trainer
    best_path: str | None = None  # the checkpoint's file, if any
    best_score: float | None = None  # its monitored metric
    test: dict[str, float] = field(default_factory=dict)


def module_class(model: dict[str, Any], where: str = "model") -> tuple[type, str]:
    """(class, family or class name) of a `TrainConfig.model` dict; unknown ones are user errors."""
    if "family" in model:
        return family(model["family"], where).module, model["family"]
    name = str(model.get("class_path", "")).rsplit(".", 1)[-1]
    classes = module_classes()
    check(name in classes, f"{where}: class_path {model.get('class_path')!r} is not a registered "
          f"aecls module; known: {', '.join(sorted(classes))}")
    return classes[name], name


def build_module(model: BaseModule | dict[str, Any], where: str = "model") -> BaseModule:
    """A module from `TrainConfig.model`; an unknown family or a bad argument is a user error."""
    if isinstance(model, BaseModule):
        return model
    cls, name = module_class(model, where)
    try:
        module = cls(**dict(model.get("init_args") or {}))
    except TypeError as e:  # an argument the family does not take
        raise AeclsError(f"{where}: {name}: {e}") from e
    if "family" in model:
        module.family_name = model["family"]
    return module


def build_data(data: FashionMNISTDataModule | dict[str, Any]) -> FashionMNISTDataModule:
    if isinstance(data, FashionMNISTDataModule):
        return data
    try:
        return FashionMNISTDataModule(**data)
    except TypeError as e:
        raise AeclsError(f"data: {e}") from e


def prepare(cfg: TrainConfig) -> TrainResult:
    """Seed, then build the module, the data and the Trainer of `cfg`; nothing runs yet. For a
    caller that needs them whatever the fit does (a pruned trial's image grid): pass the result
    to `train`."""
    check(cfg.test in TESTS, f"test must be one of {TESTS}, got {cfg.test!r}")
    if cfg.seed is not None:
        L.seed_everything(cfg.seed, verbose=False)
    module = build_module(cfg.model)
    dm = build_data(cfg.data)
    if cfg.data_hook is not None:
        dm = cfg.data_hook(module, dm)
    if isinstance(cfg.trainer, L.Trainer):
        return TrainResult(module, dm, cfg.trainer)
    args = dict(cfg.trainer)
    callbacks = [*cfg.callbacks, *([cfg.checkpoint] if cfg.checkpoint is not None else [])]
    trainer = make_trainer(args.pop("max_epochs", None), quiet=cfg.quiet, logger=cfg.logger,
                           checkpointing=cfg.checkpoint is not None, callbacks=callbacks, **args)
    return TrainResult(module, dm, trainer)


def train(cfg: TrainConfig, prepared: TrainResult | None = None) -> TrainResult:
    """Build the data, the module and the Trainer from `cfg` (or take them `prepared`), fit, and
    test as `cfg.test` says.

    Ctrl-C during the fit raises FitInterrupted (Lightning turns it into SystemExit and ignores
    further Ctrl-Cs: both undone here), so a caller can say what was left how.
    """
    result = prepared or prepare(cfg)
    module, dm, trainer = result.module, result.datamodule, result.trainer
    if cfg.ckpt_path is not None and Path(cfg.ckpt_path).is_file():
        check_resume(read_checkpoint(cfg.ckpt_path), trainer, dm)
    try:
        trainer.fit(module, datamodule=dm, ckpt_path=cfg.ckpt_path)
    except SystemExit:
        if not trainer.interrupted:
            raise
        signal.signal(signal.SIGINT, signal.default_int_handler)
        raise FitInterrupted from None
    ckpt = trainer.checkpoint_callback
    if ckpt is not None:
        result.best_path = ckpt.best_model_path or None
        result.best_score = None if ckpt.best_model_score is None else float(ckpt.best_model_score)
    if cfg.test is None or not _test_here(trainer):
        return result
    if cfg.test == "report":
        if result.best_path:
            print(f"best checkpoint: {result.best_path}")
            result.test = evaluate_checkpoint(result.best_path, dm.hparams.data_dir, logger=trainer.logger)
        return result
    ckpt_path = "best" if cfg.test == "best" else None
    kwargs = {"weights_only": True} if ckpt_path else {}
    result.test = trainer.test(module, datamodule=dm, ckpt_path=ckpt_path, verbose=False, **kwargs)[0]
    return result


def evaluate(cfg: TrainConfig, stage: str = "test", verbose: bool = False) -> dict[str, float]:
    """Test (or validate) `cfg`'s module on its data, nothing fitted: the one place beside `train`
    where a Trainer tests, used by `aecls test` (evaluate_checkpoint) and `aecls validate`. The module
    and data are built as `train` builds them; `cfg.ckpt_path`, if given, is loaded first
    (weights only); `cfg.test` is not read. The metrics of the first dataloader."""
    check(stage in ("test", "validate"), f"stage must be test or validate, got {stage!r}")
    built = prepare(replace(cfg, test=None))
    run = built.trainer.test if stage == "test" else built.trainer.validate
    kwargs = {"weights_only": True} if cfg.ckpt_path else {}
    return run(built.module, datamodule=built.datamodule, ckpt_path=cfg.ckpt_path, verbose=verbose,
               **kwargs)[0]


def evaluate_checkpoint(ckpt_path: str | Path, data_dir: str | None = None, accelerator: str = "auto",
                        baselines: bool = True, logger: Any = False,
                        test_settings: dict[str, Any] | None = None) -> dict[str, float]:
    """Test metrics of a checkpoint (and, with `baselines`, its reference numbers), printed one
    per line and returned; a classifier's per-class report is written beside its checkpoints.
    With a `logger` (the fit's, after `aecls fit`), the test/* metrics are logged to it too.
    `test_settings`: the module's test-only arguments for this test (a VAE's nll_samples)."""
    module, ckpt = load_module(ckpt_path, test_settings)
    dm = load_datamodule(ckpt, data_dir=data_dir)
    if (cost := module.test_cost()) is not None:
        print(f"aecls: {cost}", flush=True)
    # A bar over the test batches: a VAE's importance-sampled NLL takes minutes on a CPU.
    results = evaluate(TrainConfig(model=module, data=dm, seed=None, logger=logger,
                                   trainer={"max_epochs": 1, "accelerator": accelerator, "progress": True}))
    if baselines:
        from aecls.evaluation.baselines import baselines_for

        results.update(baselines_for(module, dm.splits["train"][0].cpu().numpy(),
                                     dm.splits["test"][0].cpu().numpy()))
    print(f"{type(module).__name__} {ckpt_path}")
    for name, value in sorted(results.items()):
        print(f"  {name:32s} {value:.6g}")
    if getattr(module, "test_outputs", None):
        import torch

        from aecls.evaluation.classification import write_classification_report

        out = Path(ckpt_path).resolve().parent.parent / "test"
        outputs = {k: torch.cat(v).numpy() for k, v in module.test_outputs.items()}
        paths = write_classification_report(outputs["probs"], outputs["targets"], dm.classes, out,
                                            title=f"{module.hparams.mode} classifier: {Path(ckpt_path).name}")
        print(f"  per-class report, confusion matrix, predictions: {', '.join(map(str, paths.values()))}")
    return results


def _test_here(trainer: L.Trainer) -> bool:
    """Under DDP rank 0 alone tests, in one process: the fit's process group goes, so the test's
    own trainer waits for no other rank."""
    if trainer.world_size <= 1:
        return True
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()
    return trainer.is_global_zero


def load_train_config(path: str | Path, data_dir: str | None = None, log_dir: str = LOG_DIR,
                      quiet: bool = True) -> TrainConfig:
    """A config file (configs/NAME.yaml, or a path) as `aecls fit --config` reads it: its model,
    data, trainer (callbacks included) and seed_everything, a TensorBoard logger in
    LOG_DIR/<file name>, the best + last checkpoint, and the test report after the fit.
    Change the returned config's dicts to override a value (`cfg.trainer["max_epochs"] = 3`)."""
    raw = read_config(path)
    name = Path(path).stem
    data = raw["data"]
    if data_dir is not None:
        data["data_dir"] = data_dir
    trainer = dict(raw.get("trainer") or {})
    callbacks = [instantiate_class((), c) for c in trainer.pop("callbacks", None) or []]
    seed = raw.get("seed_everything", 0)
    model = {"class_path": raw["model"].get("class_path"),
             "init_args": dict(raw["model"].get("init_args") or {})}
    module_class(model, where=str(path))  # an unknown class fails here, naming the file
    return TrainConfig(model=model, data=data, trainer=trainer,
                       seed=None if seed is False else seed,
                       logger=tensorboard_logger(log_dir, name), callbacks=callbacks,
                       checkpoint=ModelCheckpoint(**FIT_CHECKPOINT), test="report", quiet=quiet)
