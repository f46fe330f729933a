"""What every aecls LightningModule shares: optimiser config, step plumbing, image grids, checkpoints.

Subclasses implement `compute(batch, stage) -> {"loss": ..., other metrics}`, which `_shared_step`
logs as `f"{stage}/{name}"`, and
`image_rows(x) -> list of (n, 1, 28, 28) tensors` for the grid shown in TensorBoard.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, ClassVar

import lightning as L
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from torchvision.utils import make_grid

from aecls.modules.optim import OptimConfig
from aecls.nets import NetConfig

GRID_IMAGES = 8  # images per row of the TensorBoard grid


def as_config(value: Any, cls: type) -> Any:
    """Accept a config dataclass, a dict of its fields (as stored in checkpoints) or None (defaults)."""
    if value is None:
        return cls()
    if isinstance(value, dict):
        return cls(**value)
    return value


class BaseModule(L.LightningModule):
    # init arguments replaced when a checkpoint is re-loaded (see aecls.checkpoints.load_module)
    reload_overrides: ClassVar[dict[str, Any]] = {}

    def __init__(self, net: NetConfig | dict | None, optim: OptimConfig | dict | None) -> None:
        super().__init__()
        self.net_cfg: NetConfig = as_config(net, NetConfig).validate()
        self.optim: OptimConfig = as_config(optim, OptimConfig).validate()
        self._grid_batch: torch.Tensor | None = None
        self._reset_train_sums()

    def save_config(self, **extra: Any) -> None:
        """save_hyperparameters with configs as plain dicts, so checkpoints load with weights_only."""
        self.save_hyperparameters({"net": asdict(self.net_cfg), "optim": asdict(self.optim), **extra})

    def compute(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> dict[str, torch.Tensor]:
        """Loss (key "loss", what is optimised) and metrics of one batch for `stage`."""
        raise NotImplementedError

    def _shared_step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> torch.Tensor:
        metrics = self.compute(batch, stage)
        n = len(batch[0])
        if stage == "train":
            # `self.log` on every step cost ~1 ms a step on this CPU (Lightning moves its result
            # metric to the device on each call; c = 8 CAE: 0.82x -> 0.93x of a plain loop without
            # it): training metrics are summed here and logged once an epoch, the same means.
            for name, value in metrics.items():
                self._train_sums[name] = self._train_sums.get(name, 0.0) + value.detach() * n
            self._train_count += n
        else:
            self.log_stage(stage, metrics, n)
        return metrics["loss"]

    def _reset_train_sums(self) -> None:
        self._train_sums: dict[str, torch.Tensor] = {}
        self._train_count = 0

    def on_train_epoch_start(self) -> None:
        self._reset_train_sums()

    def on_train_epoch_end(self) -> None:
        if self._train_count:
            self.log_stage("train", {k: v / self._train_count for k, v in self._train_sums.items()},
                           self._train_count)

    def image_rows(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [x]

    def log_stage(self, stage: str, metrics: dict[str, torch.Tensor], batch_size: int) -> None:
        """Log `{stage}/{name}` epoch means (weighted by batch size); the loss also to the progress bar."""
        # Under DDP each rank saw its own shard: the epoch mean is synced (summed values and
        # batch sizes over ranks), so every rank logs the mean over the whole split.
        sync = self._trainer is not None and self.trainer.world_size > 1
        for name, value in metrics.items():
            self.log(f"{stage}/{name}", value, on_step=False, on_epoch=True,
                     prog_bar=name == "loss", batch_size=batch_size, sync_dist=sync)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        return self._shared_step(batch, "train")

    def validation_step(self, batch, batch_idx: int) -> torch.Tensor:
        if batch_idx == 0:
            self._grid_batch = batch[0][:GRID_IMAGES]
        return self._shared_step(batch, "val")

    def test_step(self, batch, batch_idx: int) -> torch.Tensor:
        return self._shared_step(batch, "test")

    def on_validation_epoch_end(self) -> None:
        if "val/loss" in self.trainer.callback_metrics:
            # TensorBoard's HPARAMS tab pairs this with the run's hyper-parameters.
            self.log("hp_metric", self.trainer.callback_metrics["val/loss"],
                     sync_dist=self.trainer.world_size > 1)  # already synced: the same on every rank
        if self._grid_batch is not None and isinstance(self.logger, TensorBoardLogger):
            if not self.trainer.sanity_checking:
                self.logger.experiment.add_image("val/images", self.image_grid(self._grid_batch),
                                                 self.global_step)

    @torch.no_grad()
    def image_grid(self, x: torch.Tensor) -> torch.Tensor:
        """(3, H, W) grid: one row per entry of `image_rows` (inputs, reconstructions, ...)."""
        was_training = self.training
        self.eval()
        rows = [r.float().clamp(0, 1).cpu() for r in self.image_rows(x)]
        self.train(was_training)
        return make_grid(torch.cat(rows), nrow=len(x), padding=2, pad_value=1.0)

    def configure_optimizers(self) -> dict[str, Any]:
        return self.optim.build(self.parameters(), self.trainer)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Lets `aecls test --ckpt` rebuild the right class without a config file.
        checkpoint["aecls_model"] = type(self).__name__
