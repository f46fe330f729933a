"""The graph methods: Poisson and Laplace learning (and Poisson with class priors, Poisson-MBO) on
the k-NN graph of frozen codes, each transductive and inductive (aecls.transfer.graph.METHODS)."""

from __future__ import annotations

from functools import partial

from aecls.transfer import graph
from aecls.transfer.methods import Run, SweepMethod, register


def _run(name: str, r: Run) -> float:
    from aecls.transfer import runners

    return runners.graph_accuracy(r, name)


for _name in graph.METHODS:
    register(SweepMethod(_name, "graph", partial(_run, _name), ("graph_codes",)))
