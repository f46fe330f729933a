"""The fine-tuned classifier trained on graph pseudo-labels of every training image (the subset
keeps its own labels): `pseudo`; and FixMatch started from the weights that gives:
`pseudo_fixmatch`."""

from __future__ import annotations

from functools import partial

from aecls.transfer.methods import Outcome, Run, SweepMethod, register
from aecls.transfer.methods.fixmatch import SETTINGS as FIXMATCH

READS = ("graph_codes", "pseudo_graph", "pseudo_keep", "pseudo_passes", "pseudo_labelled_share",
         "min_steps", "batch_size", "lr", "head_hidden", "encoder_lr_scale")


def _run(then_fixmatch: bool, r: Run) -> Outcome:
    from aecls.transfer import runners

    return runners.pseudo(r, then_fixmatch)


register(SweepMethod("pseudo", "semi-supervised", partial(_run, False),
                     (*READS, "augment", "pseudo_tune_steps"), paired_against=("finetune",)))
register(SweepMethod("pseudo_fixmatch", "semi-supervised", partial(_run, True), (*READS, *FIXMATCH),
                     paired_against=("finetune", "fixmatch", "pseudo"), own_views=True))
