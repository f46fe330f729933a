"""What every aecls LightningModule shares: optimiser config, step plumbing, image grids, checkpoints.

Subclasses implement `compute(batch, stage) -> {"loss": ..., other metrics}`, whose epoch means
(over every image of the split, all DDP ranks) are logged as `f"{stage}/{name}"`, and
`image_rows(x) -> list of (n, 1, 28, 28) tensors` for the grid shown in TensorBoard.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, ClassVar

import lightning as L
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from torchvision.utils import make_grid

from aecls.core.errors import AeclsError
from aecls.modules.optim import OptimConfig
from aecls.modules.registry import FAMILY_KEY, for_checkpoint
from aecls.modules.speed import speed_of
from aecls.nets import NetConfig

GRID_IMAGES = 8  # images per row of the TensorBoard grid


def as_config(value: Any, cls: type) -> Any:
    """Accept a config dataclass, a dict of its fields (as stored in checkpoints) or None (defaults)."""
    if value is None:
        return cls()
    if isinstance(value, dict):
        return cls(**value)
    return value


LENGTH_KEY = "aecls_length"  # in a checkpoint: the settings that set the fit's number of steps


def length_settings(trainer: L.Trainer, datamodule: Any) -> dict[str, Any]:
    """The settings that decide how many optimiser steps a fit takes (a one-cycle schedule's
    length): the Trainer's, the devices' and the data's."""
    settings = {f"trainer.{k}": getattr(trainer, k, None) for k in
                ("max_epochs", "max_steps", "limit_train_batches", "accumulate_grad_batches")}
    settings["trainer.devices"] = trainer.world_size
    hp = getattr(datamodule, "hparams", {}) or {}
    settings.update({f"data.{k}": hp.get(k) for k in ("batch_size", "val_size", "n_labels")})
    return settings


def one_cycle_steps(checkpoint: dict[str, Any]) -> int | None:
    """The total steps a checkpoint's one-cycle lr schedule was laid out for (None: no such one)."""
    totals = [s["total_steps"] for s in checkpoint.get("lr_schedulers") or [] if s.get("total_steps")]
    return totals[0] if totals else None


def resume_changes(checkpoint: dict[str, Any], trainer: L.Trainer, datamodule: Any) -> list[str]:
    """'SETTING A -> B' for each length setting this fit changes from the checkpoint's run (none
    for a checkpoint that does not record them)."""
    before = checkpoint.get(LENGTH_KEY) or {}
    now = length_settings(trainer, datamodule)
    return [f"{k} {before[k]} -> {now[k]}" for k in now if k in before and before[k] != now[k]]


def check_resume(checkpoint: dict[str, Any], trainer: L.Trainer, datamodule: Any) -> None:
    """Before a resumed fit starts (and before Lightning's own messages): refuse to resume a one-cycle
    schedule with settings that change its length, naming them."""
    total = one_cycle_steps(checkpoint)
    if total is not None and (changed := resume_changes(checkpoint, trainer, datamodule)):
        raise cannot_resume(total, f"this fit changes {', '.join(changed)}")


def cannot_resume(total: int, why: str) -> AeclsError:
    """The refusal to resume a one-cycle schedule laid out for `total` steps, and `why`."""
    return AeclsError(f"resuming: this run's one-cycle lr schedule was laid out for {total} steps, and "
                      f"{why}; a one-cycle schedule cannot be stretched. Resume with the run's own "
                      "settings, or start a new run with the new ones (scheduler cosine or none can be "
                      "resumed longer)", setting="ckpt_path")


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"optim/lr": ...} from {"optim": {"lr": ...}}: hyper-parameters as TensorBoard lists them."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}{k}/") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


def scalar_step(trainer: L.Trainer) -> int:
    """The step Lightning logs this epoch's val/* scalars at, for an image logged beside them.
    Why a private counter: validation runs before the epoch's last optimiser step is counted for
    the loggers, so `global_step` is one ahead of the scalars; Lightning's logger connector uses
    this counter and offers no public name for it."""
    return trainer.fit_loop.epoch_loop._batches_that_stepped


class BaseModule(L.LightningModule):
    # init arguments replaced when a checkpoint is re-loaded (see aecls.training.checkpoints.load_module)
    reload_overrides: ClassVar[dict[str, Any]] = {}
    # init arguments that change only what a test computes, never the training: `aecls test` and
    # `study best` may set them for one test (a VAE's nll_samples: the test's cost)
    test_settings: ClassVar[tuple[str, ...]] = ()
    # init arguments a study does not search (registry.module_arguments): a study seeds each trial
    # itself, and a path is no hyper-parameter
    not_searched: ClassVar[tuple[str, ...]] = ("seed",)
    # the registry family it was built as (train.build_module sets it; None: found from the class
    # and hyper-parameters when a checkpoint is saved)
    family_name: str | None = None

    def __init__(self, net: NetConfig | dict | None, optim: OptimConfig | dict | None) -> None:
        super().__init__()
        self.net_cfg: NetConfig = as_config(net, NetConfig).validate()
        self.optim: OptimConfig = as_config(optim, OptimConfig).validate()
        self._grid_batch: torch.Tensor | None = None
        self._sums: dict[str, dict[str, torch.Tensor]] = {}  # stage -> metric -> sum over images
        self._counts: dict[str, int] = {}  # stage -> images

    def save_config(self, **extra: Any) -> None:
        """save_hyperparameters with configs as plain dicts, so checkpoints load with weights_only,
        and the class as LightningCLI records it (`_class_path`): `aecls validate --ckpt_path`
        rebuilds the module from any aecls checkpoint, not only from one `aecls fit` wrote.
        (A module LightningCLI builds gets LightningCLI's own record instead.)"""
        cls = type(self)
        self.save_hyperparameters({"net": asdict(self.net_cfg), "optim": asdict(self.optim), **extra,
                                   "_class_path": f"{cls.__module__}.{cls.__qualname__}"})

    def compute(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> dict[str, torch.Tensor]:
        """Loss (key "loss", what is optimised) and metrics of one batch for `stage`."""
        raise NotImplementedError

    def _shared_step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> torch.Tensor:
        # Metrics are summed here and logged once an epoch (`_log_epoch`), the same means as
        # `self.log` per step: that costs time on every step (Lightning moves its result metric
        # to the device on each call), and under DDP its synced mean of uneven shards divides by
        # an integer-averaged batch count (51 images on 2 ranks counted as 50).
        metrics = self.compute(batch, stage)
        n = len(batch[0])
        sums = self._sums.setdefault(stage, {})
        for name, value in metrics.items():
            sums[name] = sums.get(name, 0.0) + value.detach().float() * n
        self._counts[stage] = self._counts.get(stage, 0) + n
        return metrics["loss"]

    def _log_epoch(self, stage: str) -> dict[str, torch.Tensor]:
        """Log `{stage}/{name}` epoch means over every image of the split (all ranks under DDP);
        the loss also to the progress bar. Returns the means."""
        sums, count = self._sums.pop(stage, {}), self._counts.pop(stage, 0)
        if not count:
            return {}
        names = sorted(sums)
        totals = torch.stack([sums[k] for k in names] + [torch.tensor(float(count), device=self.device)])
        distributed = self.trainer.world_size > 1
        if distributed:
            totals = self.trainer.strategy.reduce(totals, reduce_op="sum")
        means = dict(zip(names, totals[:-1] / totals[-1], strict=True))
        for name, value in means.items():
            # sync_dist of a value every rank already holds: the mean of equal numbers
            # batch_size: one value an epoch, already a mean
            self.log(f"{stage}/{name}", value, on_step=False, on_epoch=True, prog_bar=name == "loss",
                     sync_dist=distributed, batch_size=1)
        return means

    def on_train_epoch_start(self) -> None:
        self._sums.pop("train", None)
        self._counts.pop("train", None)

    def on_train_epoch_end(self) -> None:
        self._log_epoch("train")

    def on_test_epoch_end(self) -> None:
        self._log_epoch("test")

    def image_rows(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [x]

    def schedule_epochs(self) -> dict[str, int]:
        """{argument: epochs} a schedule of this module needs to run its course (a KL warm-up, a
        frozen start): a study whose trials are shorter is refused (aecls.hpo.space)."""
        return {}

    @classmethod
    def check_test_settings(cls, settings: dict[str, Any]) -> None:
        """Refuse a test setting this module does not have, naming the ones it has."""
        unknown = sorted(set(settings) - set(cls.test_settings))
        if unknown:
            has = ", ".join(cls.test_settings) or "none"
            raise AeclsError(f"{', '.join(unknown)}: {cls.__name__} has no such test setting (its test "
                             f"settings: {has})", setting=unknown[0])

    def test_cost(self) -> str | None:
        """What a test of this module costs beyond one pass over the test set, said before it
        starts (None: nothing more)."""
        return None

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        return self._shared_step(batch, "train")

    def validation_step(self, batch, batch_idx: int) -> torch.Tensor:
        if batch_idx == 0:
            self._grid_batch = batch[0][:GRID_IMAGES]
        return self._shared_step(batch, "val")

    def test_step(self, batch, batch_idx: int) -> torch.Tensor:
        return self._shared_step(batch, "test")

    def family(self):
        """The registry family this module was built as (or, built from a class path, the one its
        class and hyper-parameters match); None for a class no family registers."""
        from aecls.modules.registry import families

        if self.family_name is not None:
            return families().get(self.family_name)
        return for_checkpoint(type(self).__name__, dict(self.hparams))

    def on_fit_start(self) -> None:
        # TensorBoard's HPARAMS tab pairs `hp_metric` with the run's hyper-parameters. Declared
        # here, with no value: Lightning's own declaration logs -1 at step 0 as a placeholder, so
        # the loggers aecls makes turn it off (default_hp_metric=False).
        if isinstance(self.logger, TensorBoardLogger) and self.trainer.is_global_zero \
                and not getattr(self.logger, "_default_hp_metric", True):
            from torch.utils.tensorboard.summary import hparams

            flat = {k: v if isinstance(v, (int, float, str, bool)) else str(v)
                    for k, v in _flat(dict(self.hparams)).items()}
            writer = self.logger.experiment._get_file_writer()  # as Lightning's log_hyperparams does
            for summary in hparams(flat, {"hp_metric": 0}):  # names the metric; logs no value
                writer.add_summary(summary)

    def on_validation_epoch_end(self) -> None:
        means = self._log_epoch("val")
        score = (fam.score if (fam := self.family()) is not None else "val/loss").removeprefix("val/")
        if score in means:  # the family's score: what its studies compare, one quantity across runs
            self.log("hp_metric", means[score], sync_dist=self.trainer.world_size > 1, batch_size=1)
        if self._grid_batch is not None and isinstance(self.logger, TensorBoardLogger):
            if not self.trainer.sanity_checking:
                self.logger.experiment.add_image("val/images", self.image_grid(self._grid_batch),
                                                 scalar_step(self.trainer))

    @torch.no_grad()
    def image_grid(self, x: torch.Tensor) -> torch.Tensor:
        """(3, H, W) grid: one row per entry of `image_rows` (inputs, reconstructions, ...)."""
        was_training = self.training
        self.eval()
        rows = [r.float().clamp(0, 1).cpu() for r in self.image_rows(x)]
        self.train(was_training)
        return make_grid(torch.cat(rows), nrow=len(x), padding=2, pad_value=1.0)

    def configure_optimizers(self) -> dict[str, Any]:
        return self.build_optimizer(self.parameters())

    def build_optimizer(self, params: Any) -> dict[str, Any]:
        """`optim` over `params`, with the fit's speed options (aecls.modules.speed: a fused kernel)."""
        return self.optim.build(params, self.trainer, fused=speed_of(self.trainer).fused_on())

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Resuming a fit: a one-cycle schedule is laid out for the run's total steps when it starts,
        # and Lightning restores that layout over the new one, so a run resumed with another
        # length would fail part-way ("Tried to step N times"). `check_resume` says so before the
        # fit starts where the checkpoint records its length's settings; this is the last word for
        # older checkpoints and for a length changed by the data alone.
        trainer = self._trainer
        if trainer is None or not trainer.training:
            return
        total = one_cycle_steps(checkpoint)
        if total is not None and total != (now := max(1, int(trainer.estimated_stepping_batches))):
            changed = ", ".join(resume_changes(checkpoint, trainer, trainer.datamodule)) or (
                "max_epochs, max_steps, limit_train_batches, the batch size, the training set or the "
                "devices")
            raise cannot_resume(total, f"this fit has {now} ({changed} changed)")

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Lets `aecls test --ckpt` rebuild the right class without a config file, and encoder
        # loading know the family (two families may share a class: cae and dae).
        checkpoint["aecls_model"] = type(self).__name__
        name = self.family_name
        if name is None:  # built from a class path (LightningCLI): the family its settings match
            matched = for_checkpoint(type(self).__name__, dict(self.hparams))
            name = matched.name if matched else None
        checkpoint[FAMILY_KEY] = name
        if self._trainer is not None:
            checkpoint[LENGTH_KEY] = length_settings(self._trainer, self._trainer.datamodule)
