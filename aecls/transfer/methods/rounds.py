"""Label propagation in rounds (Iscen et al., CVPR 2019, "Label Propagation for Deep
Semi-supervised Learning"): `pseudo`'s labels, then rounds of train -> re-embed with the network's
own encoder -> propagate again, each image weighted by its label's certainty and class balance."""

from __future__ import annotations

from aecls.core.paths import ROUNDS_CSV
from aecls.transfer.methods import Outcome, Run, SweepMethod, register
from aecls.transfer.methods.pseudo import READS


def _run(r: Run) -> Outcome:
    from aecls.transfer import runners

    return runners.rounds(r)


register(SweepMethod("rounds", "semi-supervised", _run,
                     (*READS, "augment", "pseudo_tune_steps", "rounds", "rounds_k", "rounds_weighting",
                      "rounds_start", "rounds_keep"),
                     paired_against=("finetune", "pseudo"), curve=ROUNDS_CSV))
