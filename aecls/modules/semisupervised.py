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
from torchmetrics.functional.classification import multiclass_accuracy

from aecls.constants import N_CLASSES
from aecls.data.transforms import augment, contrastive_view, to_unit
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


class FixMatch(Classifier):
    """A Classifier (`mode` finetune or scratch) trained with FixMatch. Args as Classifier, and:
        threshold: confidence a pseudo-label needs to count.
        unlabelled_ratio: unlabelled images per labelled image in a step.
        unlabelled_weight: weight of the unlabelled loss.
        seed: seeds the unlabelled batches and their views (with the step).
    """

    def __init__(self, *args, threshold: float = 0.95, unlabelled_ratio: int = 3,
                 unlabelled_weight: float = 1.0, seed: int = 0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        check(0 < threshold <= 1, f"threshold must be in (0, 1], got {threshold}")
        check(unlabelled_ratio >= 1, f"unlabelled_ratio must be >= 1, got {unlabelled_ratio}")
        self.hparams.update({"threshold": threshold, "unlabelled_ratio": unlabelled_ratio,
                             "unlabelled_weight": unlabelled_weight, "seed": seed})
        self.unlabelled: torch.Tensor | None = None

    def on_fit_start(self) -> None:
        if self.unlabelled is not None:  # once, not per step
            self.unlabelled = self.unlabelled.to(self.device)

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
        g = torch.Generator(device=x.device).manual_seed(self.hparams.seed * 1_000_003 + self.global_step)
        pick = torch.randint(len(self.unlabelled), (self.hparams.unlabelled_ratio * len(x),), generator=g,
                             device=x.device)
        u = to_unit(self.unlabelled[pick].to(x.device))
        weak, strong = augment(u, generator=g), contrastive_view(u, g)
        logits = self(torch.cat([x, weak, strong]))  # one pass: BatchNorm sees all three
        sup_logits, weak_logits, strong_logits = logits.split([len(x), len(u), len(u)])
        sup = F.cross_entropy(sup_logits, y)
        unsup, mask = fixmatch_loss(weak_logits, strong_logits, self.hparams.threshold)
        acc = multiclass_accuracy(sup_logits, y, num_classes=N_CLASSES, average="micro")
        return {"loss": sup + self.hparams.unlabelled_weight * unsup, "acc": acc, "sup": sup,
                "unsup": unsup, "mask": mask}
