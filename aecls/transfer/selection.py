"""Choosing a full run's settings on validation images only: pure functions of validation rows
(sweeps made with `score` "val", which put the validation images where the test images would be
and read no test file's content; aecls.transfer.runners.scored_on).

The full pipeline (aecls.fullrun) measures, per label budget, every cheap cell (an encoder and a
method) and every graph algorithm on every encoder's codes and on the best pair's side by side,
then a small grid of the pseudo-label settings; this module picks from those rows: the codes and
algorithm of the graph, the encoder that is fine-tuned, the pseudo-label settings, and the cells
that get extra seeds. Each choice is the highest mean validation accuracy over the seeds measured;
a tie goes to the earlier candidate (the table order), so a choice never depends on dict order.
"""

from __future__ import annotations

import itertools

import pandas as pd

from aecls.core.errors import check
from aecls.transfer import graph
from aecls.transfer.methods import method_names

# The pseudo-label settings chosen on validation images (every combination is measured): the
# fraction of the other training images kept (surest first), the labelled subset's share of the
# images trained on, and the steps on the labelled subset alone afterwards.
GRID = {"pseudo_keep": (0.5, 1.0), "pseudo_labelled_share": (0.0, 0.5), "pseudo_tune_steps": (0, 300)}
# Label propagation in rounds (issue #52; the `rounds` method), on the codes and pseudo-label
# settings chosen above: the neighbours of the graph of the network's codes and how each propagated
# label is drawn (every combination measured), each run ROUNDS_MAX rounds long. The number of rounds
# is chosen from those runs' per-round curves: round r of a run is a run of r rounds (the same
# seeds, the same draws; its accuracy at round r is what that run scores on validation images).
ROUNDS_GRID = {"rounds_k": (10, 20), "rounds_weighting": ("certainty", "none")}
ROUNDS_MAX = 4
# The graph methods measured on every encoder's codes: each fast algorithm, transductive (the
# papers' setting; the scored images are in the graph, their labels never read).
GRAPH = tuple(m for m, (algorithm, transductive) in graph.METHODS.items()
              if transductive and algorithm in graph.FAST)


def grid_points(grid: dict[str, tuple] = GRID) -> list[dict]:
    """Every combination of the grid's values, as sweep settings."""
    return [dict(zip(grid, values, strict=True)) for values in itertools.product(*grid.values())]


def point_name(point: dict) -> str:
    """A grid point as a folder name: keep0.5_share0.0_tune300, k10_wcertainty."""
    short = {"pseudo_keep": "keep", "pseudo_labelled_share": "share", "pseudo_tune_steps": "tune",
             "rounds_k": "k", "rounds_weighting": "w", "rounds_start": "start",
             "rounds_keep": "keep"}
    return "_".join(f"{short.get(k, k)}{v}" for k, v in point.items())


def means(rows: pd.DataFrame) -> pd.DataFrame:
    """Mean validation accuracy and seeds per (sweep, labels, method), in the rows' order."""
    return (rows.groupby(["sweep", "labels", "method"], sort=False)["acc"]
            .agg(["mean", "count"]).reset_index())


def _best(cells: pd.DataFrame, what: str) -> pd.Series:
    check(not cells.empty, f"no validation rows to choose {what} from")
    return cells.loc[cells["mean"].idxmax()]  # the first of equal means: the table order


def best_encoder(cells: pd.DataFrame, labels: int, among: list[str], method: str = "finetune") -> str:
    """The encoder (sweep) whose `method` scores highest at `labels`: the one fine-tuned by the
    semi-supervised methods."""
    mine = cells[(cells["labels"] == labels) & (cells["method"] == method) & cells["sweep"].isin(among)]
    return str(_best(mine, f"the encoder to fine-tune at {labels} labels")["sweep"])


def top_codes(cells: pd.DataFrame, among: list[str], n: int = 2) -> list[str]:
    """The `n` encoders whose codes the graph labels best: each encoder's best graph method, its
    mean over the budgets measured; ranked highest first (ties: the order of `among`)."""
    g = cells[cells["method"].isin(method_names(kind="graph")) & cells["sweep"].isin(among)]
    score = g.groupby(["sweep", "method"], sort=False)["mean"].mean().groupby(level=0, sort=False).max()
    ranked = sorted(among, key=lambda e: -score.get(e, float("-inf")))
    return [e for e in ranked if e in score.index][:n]


def best_graph(cells: pd.DataFrame, labels: int) -> tuple[str, str]:
    """(codes, graph method) that label best at `labels`: codes an encoder's name, or a pair's
    (its sweep's name)."""
    g = cells[(cells["labels"] == labels) & cells["method"].isin(method_names(kind="graph"))]
    row = _best(g, f"the graph at {labels} labels")
    return str(row["sweep"]), str(row["method"])


def best_point(cells: pd.DataFrame, labels: int, points: dict[str, dict]) -> str:
    """The grid point (a sweep named by point_name) whose `pseudo` scores highest at `labels`."""
    g = cells[(cells["labels"] == labels) & (cells["method"] == "pseudo") & cells["sweep"].isin(points)]
    return str(_best(g, f"the pseudo-label settings at {labels} labels")["sweep"])


def best_cells(candidates: pd.DataFrame, labels: int, n: int = 2) -> list[tuple[str, str]]:
    """The `n` (sweep, method) cells with the highest validation means at `labels`, best first."""
    g = candidates[candidates["labels"] == labels].sort_values("mean", ascending=False, kind="stable")
    return [(str(r.sweep), str(r.method)) for r in g.head(n).itertuples()]


def best_round(curves: pd.DataFrame, labels: int, points: dict[str, dict]) -> tuple[str, int, float]:
    """(grid point, rounds, mean) of the highest mean validation accuracy over the seeds measured at
    `labels`, over every round of every point's curve (rows: sweep, labels, seed, round, val_acc;
    ties: the fewer rounds, then the earlier point)."""
    c = curves[(curves["labels"] == labels) & curves["sweep"].isin(points)]
    c = c.groupby(["sweep", "round"], sort=False)["val_acc"].mean().reset_index(name="mean")
    row = _best(c.sort_values("round", kind="stable"), f"the rounds at {labels} labels")
    return str(row["sweep"]), int(row["round"]), float(row["mean"])
