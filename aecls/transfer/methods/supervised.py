"""A classifier trained on the labelled subset alone: from scratch (the encoder's architecture,
random weights), on the frozen pretrained encoder, and fine-tuning it (the encoder at lr x
encoder_lr_scale)."""

from __future__ import annotations

from functools import partial

from aecls.transfer.methods import Run, SweepMethod, register

HEAD = ("batch_size", "lr", "head_hidden", "epochs", "min_steps", "augment")


def _run(mode: str, r: Run) -> float:
    from aecls.transfer import runners

    return runners.supervised(r, mode)


register(SweepMethod("scratch", "supervised", partial(_run, "scratch"), HEAD, uses_encoder=False,
                     reference=True, default=True, title="scratch (no pretraining)"))
register(SweepMethod("frozen", "supervised", partial(_run, "frozen"), HEAD, default=True))
register(SweepMethod("finetune", "supervised", partial(_run, "finetune"), (*HEAD, "encoder_lr_scale"),
                     default=True))
