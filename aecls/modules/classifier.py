"""Classifier LightningModule: an encoder (conv / MLP of the autoencoders, or the supervised CNN)
plus a head, trained from scratch, on a frozen pretrained encoder, or fine-tuning it."""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import BaseFinetuning
from torch import nn
from torchmetrics.functional.classification import multiclass_accuracy

from aecls.core.constants import CLASSIFIER_MODES, N_CLASSES
from aecls.core.errors import AeclsError, check
from aecls.modules.base import BaseModule
from aecls.modules.optim import OptimConfig
from aecls.modules.registry import Family, code_halves, register
from aecls.nets import NetConfig, build_encoder

MODES = CLASSIFIER_MODES


class EncoderFreezer(BaseFinetuning):
    """Freezes the encoder (BatchNorm included, kept in eval mode) before training; with
    `unfreeze_at`, adds it to the optimiser at that epoch with lr * `lr_scale`."""

    def __init__(self, unfreeze_at: int | None, lr_scale: float) -> None:
        super().__init__()
        self.unfreeze_at, self.lr_scale = unfreeze_at, lr_scale

    def frozen(self, epoch: int) -> bool:
        return self.unfreeze_at is None or epoch < self.unfreeze_at

    def freeze_before_training(self, pl_module) -> None:
        self.freeze(pl_module.encoder, train_bn=False)

    def finetune_function(self, pl_module, current_epoch: int, optimizer) -> None:
        if current_epoch == self.unfreeze_at:
            lr = optimizer.param_groups[0]["lr"] * self.lr_scale
            self.unfreeze_and_add_param_group(pl_module.encoder, optimizer, lr=lr, train_bn=True)

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        super().on_train_epoch_start(trainer, pl_module)
        # Frozen BatchNorm must not use batch statistics either; once unfrozen, BatchNorm and
        # dropout train again (Lightning keeps a module's mode across epochs, so set it each time).
        pl_module.encoder.train(not self.frozen(trainer.current_epoch))


class Classifier(BaseModule):
    """An encoder and a head trained on labels: from scratch, on a frozen encoder, or fine-tuned.

    Args:
        net: encoder architecture (taken from the pretrained encoder when `encoder_path` is set;
            a `latent_dim` that disagrees with it is an error).
        optim: optimiser and schedule (lr is the head's; the encoder gets lr * encoder_lr_scale).
        mode: scratch (random encoder), frozen (pretrained encoder, only the head trains) or
            finetune (pretrained encoder trained too, at a lower lr).
        encoder_path: best_encoder.pt (or its folder) from `aecls study best`, or an AE checkpoint.
        head_hidden: width of the head's hidden layer (0 = a linear head) (default 64).
        freeze_epochs: finetune only: train the head alone for this many epochs first.
        encoder_lr_scale: finetune only: encoder lr = lr * this.
        encoder_source: set from `encoder_path` (the model the encoder comes from); kept so a
            checkpoint rebuilds the same encoder shape.
    """

    # `aecls test --ckpt` rebuilds from the checkpoint's weights, not from the original export.
    reload_overrides: ClassVar[dict] = {"encoder_path": None}
    # what the encoder is, not how it is trained: a study's space keeps it fixed
    not_searched: ClassVar[tuple[str, ...]] = ("seed", "encoder_path", "encoder_source")

    def __init__(self, net: NetConfig | None = None, optim: OptimConfig | None = None,
                 mode: str = "scratch", encoder_path: str | None = None, head_hidden: int = 64,
                 freeze_epochs: int = 0, encoder_lr_scale: float = 0.1,
                 encoder_source: str = "scratch") -> None:
        check(mode in MODES, f"mode must be one of {list(MODES)}, got {mode!r}")
        check(head_hidden >= 0, f"head_hidden must be >= 0, got {head_hidden}")
        check(freeze_epochs >= 0, f"freeze_epochs must be >= 0, got {freeze_epochs}")
        check(encoder_lr_scale > 0, f"encoder_lr_scale must be > 0, got {encoder_lr_scale}")
        source = encoder_source
        if encoder_path is not None:
            from aecls.modules.encoders import load_encoder

            encoder, pretrained_net, source = load_encoder(encoder_path)
            if net is not None:
                given = net["latent_dim"] if isinstance(net, dict) else net.latent_dim
                check(given == pretrained_net.latent_dim,
                      f"latent_dim {given} does not match the pretrained encoder's "
                      f"{pretrained_net.latent_dim} ({encoder_path})")
            net = pretrained_net
        super().__init__(net, optim)
        if encoder_path is None:
            encoder = build_encoder(self.net_cfg, out_mult=code_halves(source))
        check(not (mode == "finetune" and freeze_epochs > 0 and self.optim.scheduler == "onecycle"),
              "finetune with freeze_epochs > 0 adds the encoder's parameters mid-run, which onecycle "
              "cannot schedule: use scheduler cosine, plateau or none")
        self.save_config(mode=mode, encoder_path=encoder_path, head_hidden=head_hidden,
                         freeze_epochs=freeze_epochs, encoder_lr_scale=encoder_lr_scale,
                         encoder_source=source)
        self.encoder = encoder
        latent, p = self.net_cfg.latent_dim, self.net_cfg.dropout
        layers = [nn.Linear(latent, head_hidden), nn.ReLU(), nn.Linear(head_hidden, N_CLASSES)]
        self.head = nn.Sequential(nn.Dropout(p), *(layers if head_hidden else [nn.Linear(latent, N_CLASSES)]))
        self.test_outputs: dict[str, list[torch.Tensor]] = {}

    def schedule_epochs(self) -> dict[str, int]:
        # fine-tuning unfreezes the encoder at epoch freeze_epochs (0-based): one more to use it
        k = self.hparams.freeze_epochs
        return {"freeze_epochs": k + 1} if self.hparams.mode == "finetune" and k > 0 else {}

    def setup(self, stage: str) -> None:
        if stage == "fit" and self.hparams.mode != "scratch" and self.hparams.encoder_path is None:
            raise AeclsError(f"mode {self.hparams.mode!r} needs a pretrained encoder: set encoder_path")

    def features(self, x: torch.Tensor) -> torch.Tensor:  # (B, 1, 28, 28) -> (B, latent)
        # The code is the encoder's first latent_dim outputs (a VAE's mean: Family.code_halves).
        return self.encoder(x)[:, : self.net_cfg.latent_dim]

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # -> logits (B, 10)
        return self.head(self.features(x))

    def codes_once(self, dm, splits: tuple[str, ...] | None = None):
        """Frozen mode: `dm` with each image replaced by its code (of `splits`, default all; see
        FashionMNISTDataModule.encoded), computed once now, and this
        module's encoder by the identity, so the head trains on those codes. The same run as
        encoding every batch at every step (a frozen encoder is a fixed function: no gradient,
        BatchNorm and dropout in eval mode, as EncoderFreezer keeps them), at the cost of one
        pass over the data instead of one per step. For runs that keep no checkpoint: the module
        holds no encoder weights afterwards."""
        check(self.hparams.mode == "frozen", f"codes_once is for mode 'frozen', not {self.hparams.mode!r}")
        self.encoder.eval()
        with torch.no_grad():
            coded = dm.encoded(self.features, splits)
        self.encoder = nn.Identity()
        return coded

    def configure_callbacks(self) -> list:
        mode, k = self.hparams.mode, self.hparams.freeze_epochs
        if mode == "frozen":
            return [EncoderFreezer(None, 1.0)]
        if mode == "finetune" and k > 0:
            return [EncoderFreezer(k, self.hparams.encoder_lr_scale)]
        return []

    def configure_optimizers(self):
        head = list(self.head.parameters())
        if self.hparams.mode == "scratch":
            return self.build_optimizer(self.parameters())
        if self.hparams.mode == "finetune" and self.hparams.freeze_epochs == 0:
            groups = [{"params": head, "lr": self.optim.lr},
                      {"params": list(self.encoder.parameters()),
                       "lr": self.optim.lr * self.hparams.encoder_lr_scale}]
            return self.build_optimizer(groups)
        return self.build_optimizer(head)  # encoder frozen (for now)

    def compute(self, batch, stage: str) -> dict[str, torch.Tensor]:
        x, y = batch
        logits = self(x)
        loss = F.cross_entropy(logits, y)
        acc = multiclass_accuracy(logits, y, num_classes=N_CLASSES, average="micro")
        if stage == "test":
            for name, value in (("probs", logits.softmax(1)), ("targets", y)):
                self.test_outputs.setdefault(name, []).append(value.detach().cpu())
        return {"loss": loss, "acc": acc}

    def on_test_epoch_start(self) -> None:
        self.test_outputs = {}


register(Family("classifier", Classifier, "classifier"))
