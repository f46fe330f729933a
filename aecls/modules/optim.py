"""One typed optimiser + scheduler config, used by every LightningModule (AEs, VAE, classifier)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from aecls.core.errors import check

OPTIMIZERS = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
    "rmsprop": torch.optim.RMSprop,
}
SCHEDULERS = ("none", "onecycle", "cosine", "cosine_steps", "plateau")
COSINE_STEPS_END = 7 / 16  # cosine_steps: the lr at step k of K is lr * cos(pi * END * k / K)
FUSED = {"adam", "adamw", "sgd"}  # optimisers with a fused kernel (CPU and CUDA)
PLATEAU_MONITOR = "val/loss"  # what the plateau schedule watches


@dataclass
class OptimConfig:
    """Optimiser and learning-rate schedule.

    Args:
        name: adam, adamw, sgd (with `momentum`, Nesterov) or rmsprop.
        lr: learning rate (the peak lr for onecycle).
        weight_decay: L2 penalty (decoupled for adamw).
        momentum: for sgd and rmsprop.
        scheduler: none, onecycle (per step), cosine (per epoch, to 0 at max_epochs),
            cosine_steps (per step over the fit's steps, lr * cos(7 pi k / 16 K): FixMatch's
            schedule, which ends at 0.2 lr, for fits counted in steps) or plateau (halves lr
            when val/loss stalls for 2 epochs).
    """

    name: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.9
    scheduler: str = "none"

    def validate(self) -> OptimConfig:
        """Raise AeclsError on a bad value (called by the modules, so the CLI shows one clear line)."""
        check(self.name in OPTIMIZERS, f"optim.name must be one of {sorted(OPTIMIZERS)}, got {self.name!r}")
        check(self.scheduler in SCHEDULERS,
              f"optim.scheduler must be one of {list(SCHEDULERS)}, got {self.scheduler!r}")
        check(self.lr > 0, f"optim.lr must be > 0, got {self.lr}")
        check(self.weight_decay >= 0, f"optim.weight_decay must be >= 0, got {self.weight_decay}")
        check(0 <= self.momentum < 1, f"optim.momentum must be in [0, 1), got {self.momentum}")
        return self

    def build(self, params: Any, trainer: Any, fused: bool = False) -> dict[str, Any]:
        """What `configure_optimizers` returns: the optimiser and, if any, its scheduler config.
        `fused`: the optimiser's fused kernel where it has one (the fit's speed option)."""
        kwargs: dict[str, Any] = {"lr": self.lr, "weight_decay": self.weight_decay}
        if self.name == "sgd":
            kwargs.update(momentum=self.momentum, nesterov=self.momentum > 0)
        elif self.name == "rmsprop":
            kwargs["momentum"] = self.momentum
        if self.name in FUSED and fused:
            kwargs["fused"] = True
        opt = OPTIMIZERS[self.name](params, **kwargs)
        if self.scheduler == "none":
            return {"optimizer": opt}
        if self.scheduler == "onecycle":
            peaks = [g["lr"] for g in opt.param_groups]  # per group: a fine-tuned encoder's is lower
            sched = torch.optim.lr_scheduler.OneCycleLR(
                opt, max_lr=peaks, total_steps=max(1, int(trainer.estimated_stepping_batches)))
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
        if self.scheduler == "cosine":
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, trainer.max_epochs or 1))
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}
        if self.scheduler == "cosine_steps":
            total = max(1, int(trainer.estimated_stepping_batches))
            sched = torch.optim.lr_scheduler.LambdaLR(
                opt, lambda k: math.cos(math.pi * COSINE_STEPS_END * min(k, total) / total))
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=2)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "monitor": PLATEAU_MONITOR}}
