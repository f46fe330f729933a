"""FixMatch: semi-supervised training of a classifier from its labelled subset and the rest of
the training images without their labels.

Why FixMatch (Sohn et al. 2020): it is the standard, simple strong baseline for few labels, and
it reuses what aecls has: the classifier (here fine-tuning a pretrained encoder), the crop/flip
augmentation as the weak view and the contrastive view as the strong one. Each step: cross-entropy
on the labelled batch (weak views), plus, for `unlabelled_ratio` times as many unlabelled images,
cross-entropy of the strong view against the class the model gives the weak view, counted only
where that prediction is at least `threshold` confident. The unlabelled images come without
labels (`set_unlabelled`), so no label outside the subset can be read.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torchmetrics.functional.classification import multiclass_accuracy

from aecls.constants import N_CLASSES
from aecls.data.transforms import augment, contrastive_view, step_generator, to_unit
from aecls.errors import check
from aecls.modules.classifier import Classifier


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


class FixMatch(Classifier):
    """A Classifier (`mode` finetune or scratch) trained with FixMatch. Args as Classifier, and:
        threshold: confidence a pseudo-label needs to count.
        unlabelled_ratio: unlabelled images per labelled image in a step.
        unlabelled_weight: weight of the unlabelled loss.
        teacher_ema: 0 (FixMatch as published: the model labels its own weak views), or the decay
            of an exponential moving average of the model (torch's AveragedModel) that gives the
            pseudo-labels instead, in eval mode: a slower, steadier teacher (as in Mean Teacher).
        seed: seeds the unlabelled batches and their views (with the step).
    """

    def __init__(self, *args, threshold: float = 0.95, unlabelled_ratio: int = 3,
                 unlabelled_weight: float = 1.0, teacher_ema: float = 0.0, seed: int = 0,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        check(0 < threshold <= 1, f"threshold must be in (0, 1], got {threshold}")
        check(unlabelled_ratio >= 1, f"unlabelled_ratio must be >= 1, got {unlabelled_ratio}")
        check(0 <= teacher_ema < 1, f"teacher_ema must be in [0, 1), got {teacher_ema}")
        self.hparams.update({"threshold": threshold, "unlabelled_ratio": unlabelled_ratio,
                             "unlabelled_weight": unlabelled_weight, "teacher_ema": teacher_ema,
                             "seed": seed})
        self.unlabelled: torch.Tensor | None = None
        # Kept out of the module tree (object.__setattr__): not trained, not in the checkpoint.
        object.__setattr__(self, "teacher", None)

    def on_fit_start(self) -> None:
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
        """(N, 28, 28) uint8 training images, no labels; kept on the training device."""
        check(images.dtype == torch.uint8 and images.ndim == 3, "unlabelled images: (N, 28, 28) uint8")
        self.unlabelled = images
        return self

    def compute(self, batch, stage: str) -> dict[str, torch.Tensor]:
        if stage != "train":
            return super().compute(batch, stage)
        check(self.unlabelled is not None, "FixMatch needs its unlabelled images: call set_unlabelled")
        x, y = batch
        g = step_generator(x.device, self.hparams.seed, self.global_step)
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
