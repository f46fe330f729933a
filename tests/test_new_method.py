"""The measure of the sweep-method registry: a method a researcher adds, scikit-learn's
LabelSpreading on the encoder's frozen codes, written as one file would hold it (its runner and
its `register` call), reaches `transfer sweep --methods`, `transfer compare` (paired against the
method it declares) and `aecls results` with no edit anywhere else in aecls. It is registered for
this test only.

The code down to LABEL_SPREADING is what aecls/transfer/methods/label_spreading.py would hold."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest

from aecls.cli import main
from aecls.transfer.methods import Run, SweepMethod, register, unregister


def _spread(r: Run) -> float:
    """LabelSpreading (Zhou et al. 2004) over the k-NN graph of the frozen codes of the seed's
    training split, from the subset's labels; each test image then gets the class its codes'
    neighbours spread to it."""
    from sklearn.semi_supervised import LabelSpreading

    from aecls.data import FashionMNISTDataModule
    from aecls.transfer.labelling import frozen_codes
    from aecls.transfer.runners import TESTED, scored_on, subset_rows

    dm = scored_on(FashionMNISTDataModule(data_dir=r.cfg.data_dir, seed=r.seed, val_size=r.cfg.val_size),
                   r.cfg.score)
    train, train_y, test, test_y = frozen_codes(r.cfg.encoder, dm, TESTED)
    given = np.full(len(train_y), -1)
    rows = subset_rows(train_y, r.budget, r.seed)
    given[rows] = train_y[rows]
    return float(LabelSpreading(kernel="knn", n_neighbors=10).fit(train, given).score(test, test_y))


LABEL_SPREADING = SweepMethod("label_spreading", "graph", _spread,
                              paired_against=("graph_laplace_inductive",))


@pytest.fixture
def label_spreading():
    register(LABEL_SPREADING)
    yield LABEL_SPREADING
    unregister(LABEL_SPREADING.name)


def test_a_new_method_reaches_the_sweep_compare_and_results(label_spreading, tiny_data, tmp_path, capsys):
    from tests.test_transfer import _encoder

    enc = _encoder(tmp_path)
    argv = ["transfer", "sweep", "--encoder", str(enc), "--labels", "20", "--seeds", "3",
            "--methods", "label_spreading,graph_laplace_inductive,logreg_pixels",
            "--data-dir", str(tiny_data), "--val-size", "50", "--no-progress", "--out", "results/new/a"]
    assert main(argv) == 0
    rows = list(csv.DictReader(open("results/new/a/sweep.csv")))
    assert {r["method"] for r in rows} == {"label_spreading", "graph_laplace_inductive", "logreg_pixels"}
    assert all(0 <= float(r["test_acc"]) <= 1 for r in rows)
    assert "label_spreading" in Path("results/new/a/sweep.md").read_text()
    # two sweeps of it compared; paired, within a sweep, against the method it declares
    shutil.copytree("results/new/a", "results/new/b")
    assert main(["transfer", "compare", "a=results/new/a", "b=results/new/b", "--out", "results/new"]) == 0
    md = Path("results/new/compare.md").read_text()
    semi = md.split("## Semi-supervised vs what it builds on")[1]
    assert "| a | 20 | label_spreading | graph_laplace_inductive |" in semi
    assert "| 20 | label_spreading |" in md.split("## Paired differences")[1]  # it uses the encoder
    # and RESULTS.md's blocks name it
    Path("RESULTS.md").write_text("# R\n<!-- headline: results/new -->\n<!-- /results -->\n"
                                  "<!-- results: results/new -->\n<!-- /results -->\n")
    capsys.readouterr()
    assert main(["results"]) == 0 and main(["results", "--check"]) == 0
    text = Path("RESULTS.md").read_text()
    (row,) = [line for line in text.splitlines() if line.startswith("| 20 |")]
    assert "label_spreading" in row  # a candidate of the headline like any method


def test_a_method_breaking_a_rule_is_refused_at_construction():
    with pytest.raises(ValueError, match="kind must be one of"):
        SweepMethod("x", "magic", _spread)
    with pytest.raises(ValueError, match="paired against itself"):
        SweepMethod("x", "graph", _spread, paired_against=("x",))
    with pytest.raises(ValueError, match="uses none"):
        SweepMethod("x", "baseline", _spread, reference=True)
