"""FixMatch (Sohn et al. 2020) from the pretrained encoder, fine-tuned: the labelled subset and the
training split's other images, unlabelled (their weak views pseudo-label their strong ones)."""

from __future__ import annotations

from aecls.transfer.methods import Outcome, Run, SweepMethod, register

# what FixMatch reads (its views are its own: the data's `augment` is not among them)
SETTINGS = ("fixmatch_steps", "fixmatch_lr", "threshold", "unlabelled_ratio", "unlabelled_weight",
            "eval_ema", "teacher_ema", "monitor_every")


def _run(r: Run) -> Outcome:
    from aecls.transfer import runners

    return runners.fixmatch(r.cfg, r.dm, r.seed)


register(SweepMethod("fixmatch", "semi-supervised", _run,
                     ("batch_size", "head_hidden", "encoder_lr_scale", *SETTINGS),
                     paired_against=("finetune",), own_views=True))
