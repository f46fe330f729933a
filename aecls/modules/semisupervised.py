"""FixMatch: semi-supervised training of a classifier from its labelled subset and the rest of
the training images without their labels.

Why FixMatch (Sohn et al. 2020): it is the standard, simple strong baseline for few labels, and
it reuses what aecls has: the classifier (here fine-tuning a pretrained encoder), the crop/flip
augmentation as the weak view and the contrastive view as the strong one. Each step:
cross-entropy on the weak views of the labelled batch, plus, for `unlabelled_ratio` times as many
unlabelled images, cross-entropy of the strong view against the class the model gives the weak
view, counted only where that prediction is at least `threshold` confident. The defaults are the
paper's (aecls.core.constants: mu 7, threshold 0.95, SGD Nesterov 0.9, lr 0.03 with cos(7 pi k / 16 K)
decay, weight decay 5e-4, an EMA of the weights evaluated). The unlabelled images come without
labels (`set_unlabelled`), so no label outside the subset can be read; `PseudoLabelMonitor` reads
validation labels, to score a diagnostic only.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback, EMAWeightAveraging
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torchmetrics.functional.classification import multiclass_accuracy

from aecls.core.constants import (
    FIXMATCH_EMA,
    FIXMATCH_LR,
    FIXMATCH_MOMENTUM,
    FIXMATCH_MU,
    FIXMATCH_THRESHOLD,
    FIXMATCH_WEIGHT_DECAY,
    N_CLASSES,
)
from aecls.core.errors import check
from aecls.data.transforms import augment, contrastive_view, step_generator, to_unit
from aecls.modules.classifier import Classifier
from aecls.modules.optim import OptimConfig
from aecls.modules.registry import Family, register
from aecls.nets import NetConfig


def published_optim(lr: float = FIXMATCH_LR) -> OptimConfig:
    """The paper's optimiser: SGD, Nesterov momentum 0.9, weight decay 5e-4, lr decayed per step
    by cos(7 pi k / 16 K) over the fit's K steps."""
    return OptimConfig(name="sgd", lr=lr, momentum=FIXMATCH_MOMENTUM, weight_decay=FIXMATCH_WEIGHT_DECAY,
                       scheduler="cosine_steps")


def fixmatch_loss(logits_weak: torch.Tensor, logits_strong: torch.Tensor,
                  threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(unlabelled loss, fraction of images above the threshold); logits (B, C) of the weak and
    strong views of the same B images. The pseudo-labels carry no gradient."""
    probs = logits_weak.detach().softmax(1)
    confidence, pseudo = probs.max(1)
    mask = (confidence >= threshold).float()
    return (F.cross_entropy(logits_strong, pseudo, reduction="none") * mask).mean(), mask.mean()


class _Net(nn.Module):
    """A classifier's encoder + head as one plain module (what the EMA teacher averages)."""

    def __init__(self, model: Classifier) -> None:
        super().__init__()
        self.encoder, self.head, self.latent = model.encoder, model.head, model.net_cfg.latent_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x)[:, : self.latent])


class EvalEMA(EMAWeightAveraging):
    """Lightning's exponential moving average of the weights: swapped in for validation, copied
    into the model when training ends (so `trainer.test` and checkpoints score the average).
    `averaged()` gives the average during the fit (for the diagnostic)."""

    def averaged(self) -> nn.Module | None:
        return None if self._average_model is None else self._average_model.module


class FixMatch(Classifier):
    """A Classifier (`mode` finetune or scratch) trained with FixMatch. The labelled batch gets the
    weak view (random crop + flip) every step, drawn here: the DataModule's own `augment` must be off.

    Args:
        net: as Classifier's.
        optim: as Classifier's (default: `published_optim()`, SGD as published).
        mode: finetune or scratch, as Classifier's.
        encoder_path: as Classifier's.
        head_hidden: as Classifier's.
        freeze_epochs: as Classifier's.
        encoder_lr_scale: as Classifier's.
        encoder_source: as Classifier's.
        threshold: confidence a pseudo-label needs to count.
        unlabelled_ratio: unlabelled images per labelled image in a step (the paper's mu).
        unlabelled_weight: weight of the unlabelled loss.
        eval_ema: decay of the moving average of the weights that is evaluated and saved (as
            published: 0.999); 0 = evaluate the trained weights themselves.
        teacher_ema: 0 (FixMatch as published: the model labels its own weak views), or the decay
            of an exponential moving average of the model (torch's AveragedModel) that gives the
            pseudo-labels instead, in eval mode: a slower, steadier teacher (as in Mean Teacher).
        seed: seeds the unlabelled batches and every view (with the step).
    """

    def __init__(self, net: NetConfig | dict | None = None, optim: OptimConfig | dict | None = None,
                 mode: str = "scratch", encoder_path: str | None = None, head_hidden: int = 64,
                 freeze_epochs: int = 0, encoder_lr_scale: float = 0.1, encoder_source: str = "scratch",
                 threshold: float = FIXMATCH_THRESHOLD, unlabelled_ratio: int = FIXMATCH_MU,
                 unlabelled_weight: float = 1.0, eval_ema: float = FIXMATCH_EMA, teacher_ema: float = 0.0,
                 seed: int = 0) -> None:
        super().__init__(net, published_optim() if optim is None else optim, mode, encoder_path, head_hidden,
                         freeze_epochs, encoder_lr_scale, encoder_source)
        check(0 < threshold <= 1, f"threshold must be in (0, 1], got {threshold}")
        check(unlabelled_ratio >= 1, f"unlabelled_ratio must be >= 1, got {unlabelled_ratio}")
        check(0 <= teacher_ema < 1, f"teacher_ema must be in [0, 1), got {teacher_ema}")
        check(0 <= eval_ema < 1, f"eval_ema must be in [0, 1), got {eval_ema}")
        self.hparams.update({"threshold": threshold, "unlabelled_ratio": unlabelled_ratio,
                             "unlabelled_weight": unlabelled_weight, "eval_ema": eval_ema,
                             "teacher_ema": teacher_ema, "seed": seed})
        self.unlabelled: torch.Tensor | None = None
        # Kept out of the module tree (object.__setattr__): not trained, not in the checkpoint.
        object.__setattr__(self, "teacher", None)

    def configure_callbacks(self) -> list:
        ema = [EvalEMA(decay=self.hparams.eval_ema)] if self.hparams.eval_ema > 0 else []
        return [*super().configure_callbacks(), *ema]

    def on_fit_start(self) -> None:
        dm = self.trainer.datamodule
        check(not getattr(getattr(dm, "hparams", {}), "augment", False),
              "FixMatch draws the labelled batch's weak view itself: set the data's augment to false")
        if self.unlabelled is None and hasattr(dm, "unlabelled_images"):
            # the training split's images, read without their labels (set_unlabelled for others)
            self.unlabelled = dm.unlabelled_images()
        if self.unlabelled is not None:  # once, not per step
            self.unlabelled = self.unlabelled.to(self.device)
        if self.hparams.teacher_ema > 0:
            teacher = AveragedModel(_Net(self), multi_avg_fn=get_ema_multi_avg_fn(self.hparams.teacher_ema),
                                    use_buffers=True)
            object.__setattr__(self, "teacher", teacher.eval())

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        if self.teacher is not None:
            self.teacher.update_parameters(_Net(self))

    def set_unlabelled(self, images: torch.Tensor) -> FixMatch:
        """(N, 28, 28) uint8 training images, no labels; kept on the training device. Default: the
        DataModule's `unlabelled_images()` (the training split's images), taken when the fit starts."""
        check(images.dtype == torch.uint8 and images.ndim == 3, "unlabelled images: (N, 28, 28) uint8")
        self.unlabelled = images
        return self

    def compute(self, batch, stage: str) -> dict[str, torch.Tensor]:
        if stage != "train":
            return super().compute(batch, stage)
        check(self.unlabelled is not None, "FixMatch needs its unlabelled images: call set_unlabelled")
        x, y = batch
        g = step_generator(x.device, self.hparams.seed, self.global_step)
        x = augment(x, generator=g)  # the labelled batch's weak view
        pick = torch.randint(len(self.unlabelled), (self.hparams.unlabelled_ratio * len(x),), generator=g,
                             device=x.device)
        u = to_unit(self.unlabelled[pick].to(x.device))
        weak, strong = augment(u, generator=g), contrastive_view(u, g)
        if self.teacher is None:
            logits = self(torch.cat([x, weak, strong]))  # one pass: BatchNorm sees all three
            sup_logits, weak_logits, strong_logits = logits.split([len(x), len(u), len(u)])
        else:
            with torch.no_grad():
                weak_logits = self.teacher(weak)
            sup_logits, strong_logits = self(torch.cat([x, strong])).split([len(x), len(u)])
        sup = F.cross_entropy(sup_logits, y)
        unsup, mask = fixmatch_loss(weak_logits, strong_logits, self.hparams.threshold)
        acc = multiclass_accuracy(sup_logits, y, num_classes=N_CLASSES, average="micro")
        return {"loss": sup + self.hparams.unlabelled_weight * unsup, "acc": acc, "sup": sup,
                "unsup": unsup, "mask": mask}

    @torch.no_grad()
    def pseudo_label_stats(self, images: torch.Tensor, labels: torch.Tensor,
                           scored: nn.Module | None = None) -> dict[str, float]:
        """On (N, 28, 28) uint8 held-out images and their labels: the fraction whose weak view the
        model labels with at least `threshold` confidence (`mask_rate`), the accuracy of those
        confident pseudo-labels (`pseudo_acc`, nan when none), the model's accuracy on the clean
        images (`acc`) and, with `scored` (the evaluated average), its accuracy (`scored_acc`).
        Eval mode (running BatchNorm statistics): the training step labels in train mode, so
        this is the pseudo-labeller as it will be evaluated, not bit for bit the step's."""
        nets = [self, *([scored] if scored is not None else [])]
        modes = {m: m.training for net in nets for m in net.modules()}  # a frozen encoder stays so
        for net in nets:
            net.eval()
        x = to_unit(images.to(self.device))
        labels = labels.to(self.device)
        g = torch.Generator(device=self.device).manual_seed(self.hparams.seed)
        confidence, pseudo = self(augment(x, generator=g)).softmax(1).max(1)
        mask = confidence >= self.hparams.threshold
        right = (pseudo[mask] == labels[mask]).float()
        stats = {"mask_rate": float(mask.float().mean()),
                 "pseudo_acc": float(right.mean()) if mask.any() else math.nan,
                 "acc": float((self(x).argmax(1) == labels).float().mean())}
        if scored is not None:
            stats["scored_acc"] = float((scored(x).argmax(1) == labels).float().mean())
        for m, training in modes.items():
            m.train(training)
        return stats


class PseudoLabelMonitor(Callback):
    """Every `every_n_steps` optimiser steps (and after the last), FixMatch's
    `pseudo_label_stats` on the first `n_images` of the validation split, kept in `history` (one
    dict per check, with `step`) and sent to the logger as `pseudo/*`. A user sees when the
    confident pseudo-labels drift. The validation labels score this diagnostic only: nothing here
    reaches the loss (tests/test_semisupervised.py checks it)."""

    def __init__(self, every_n_steps: int = 100, n_images: int = 1000) -> None:
        check(every_n_steps >= 1 and n_images >= 1, "every_n_steps and n_images must be >= 1")
        self.every, self.n_images = every_n_steps, n_images
        self.history: list[dict[str, float]] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        step = trainer.global_step
        if step % self.every and step != trainer.max_steps:
            return
        x, y = trainer.datamodule.splits["val"]
        ema = next((c for c in trainer.callbacks if isinstance(c, EvalEMA)), None)
        stats = pl_module.pseudo_label_stats(x[: self.n_images], y[: self.n_images],
                                             ema.averaged() if ema else None)
        self.history.append({"step": step, **stats})
        if trainer.logger is not None:
            trainer.logger.log_metrics({f"pseudo/{k}": v for k, v in stats.items()}, step=step)


register(Family("fixmatch", FixMatch, "semi-supervised"))
