"""Graph pseudo-labels that start the classifier (issue #39): which training images a run keeps
and with which labels, that no label outside the labelled subset reaches them, and the sweep's
`pseudo` rows."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from aecls.cli import main
from aecls.transfer import graph
from aecls.transfer.compare import compare_markdown
from tests.test_graph import _clusters
from tests.test_transfer import _encoder


def test_kept_keeps_the_labelled_and_the_surest_others():
    margin = np.array([0.9, 0.1, 0.5, 0.3, 0.7, 0.0])
    labelled = np.array([5])  # kept whatever its margin
    assert graph.kept(margin, labelled, 1.0).all()
    assert graph.kept(margin, labelled, 0.4).tolist() == [True, False, False, False, True, True]


@pytest.mark.parametrize("algorithm", list(graph.ALGORITHMS))
def test_training_labels_read_no_label_outside_the_subset(algorithm):
    train, train_y = _clusters(300, 0)
    labelled = np.arange(9)
    g = graph.Graphs(train, train_y, train[:3], train_y[:3])
    fraction = 1.0 if algorithm == "poisson_mbo" else 0.5  # Poisson-MBO has no margin (config.py)
    y, keep = g.training_labels(labelled, algorithm, fraction)
    assert (y[labelled] == train_y[labelled]).all() and keep[labelled].all()
    assert keep.sum() == 9 + round(291 * fraction) and (y == train_y).mean() > 0.9
    # every label outside the subset changed: the same labels and the same images kept
    wrong = np.where(np.isin(np.arange(300), labelled), train_y, (train_y + 1) % 3)
    y2, keep2 = graph.Graphs(train, wrong, train[:3], train_y[:3]).training_labels(labelled, algorithm,
                                                                                   fraction)
    assert (y2 == y).all() and (keep2 == keep).all()
    # ... while a changed label inside the subset changes them (so the comparison can fail)
    inside = train_y.copy()
    inside[labelled] = (inside[labelled] + 1) % 3
    y3, _ = graph.Graphs(train, inside, train[:3], train_y[:3]).training_labels(labelled, algorithm, fraction)
    assert (y3 != y).mean() > 0.5


def test_a_sweep_trains_on_the_pseudo_labelled_images(tiny_data, tmp_path):
    enc = _encoder(tmp_path)
    common = ["transfer", "sweep", "--encoder", str(enc), "--labels", "20,all", "--seeds", "1",
              "--epochs", "1", "--min-steps", "3", "--data-dir", str(tiny_data), "--val-size", "50",
              "--no-progress", "--methods", "pseudo,finetune"]
    assert main([*common, "--out", "all"]) == 0
    assert main([*common, "--out", "half", "--pseudo-keep", "0.5", "--pseudo-graph", "poisson_priors",
                 "--pseudo-labelled-share", "0.5", "--pseudo-tune-steps", "2",
                 "--graph-codes", f"{enc},{enc}"]) == 0
    rows = {(d, r["labels"], r["method"]): r for d in ("all", "half")
            for r in csv.DictReader(open(f"{d}/sweep.csv"))}
    assert len(rows) == 8
    # every training image (350) with 20 labels and keep 1; 20 + half of the other 330 with keep 0.5
    assert rows[("all", "20", "pseudo")]["pseudo_images"] == "350"
    assert rows[("half", "20", "pseudo")]["pseudo_images"] == str(20 + 165)
    assert rows[("all", "350", "pseudo")]["pseudo_images"] == "350"
    assert rows[("all", "350", "pseudo")]["pseudo_label_acc"] == "1.0000"
    assert 0 <= float(rows[("all", "20", "pseudo")]["pseudo_label_acc"]) <= 1
    assert rows[("all", "20", "finetune")]["pseudo_images"] == ""
    assert all(0 <= float(r["test_acc"]) <= 1 for r in rows.values())
    assert "pseudo" in open("all/sweep.md").read()


def test_pseudo_fixmatch_starts_from_the_pseudo_label_network(tiny_data, tmp_path, monkeypatch):
    import aecls.transfer.runners as sweep

    started = []  # the weights each FixMatch run began from, before any step

    def spy(cfg, seed, start=None):
        module = fixmatch_module(cfg, seed, start)
        started.append((start, {k: v.clone() for k, v in module.state_dict().items()}))
        return module

    fixmatch_module = sweep.fixmatch_module
    monkeypatch.setattr(sweep, "fixmatch_module", spy)
    enc = _encoder(tmp_path)
    assert main(["transfer", "sweep", "--encoder", str(enc), "--labels", "20", "--seeds", "1",
                 "--epochs", "1", "--min-steps", "3", "--data-dir", str(tiny_data), "--val-size", "50",
                 "--no-progress", "--methods", "finetune,fixmatch,pseudo,pseudo_fixmatch",
                 "--fixmatch-steps", "2", "--unlabelled-ratio", "1", "--pseudo-keep", "0.5",
                 "--out", "sw"]) == 0
    (plain, fresh), (pseudo, from_pseudo) = started
    assert plain is None and pseudo is not None
    trained = pseudo.state_dict()
    assert all(torch.equal(from_pseudo[k], v) for k, v in trained.items())  # every weight it trained
    head = [k for k in fresh if k.startswith("head.")]
    assert head and not all(torch.equal(fresh[k], from_pseudo[k]) for k in head)  # (a check that can fail)
    rows = {r["method"]: r for r in csv.DictReader(open("sw/sweep.csv"))}
    assert rows["pseudo_fixmatch"]["pseudo_images"] == str(20 + 165)
    md = compare_markdown({"a": ["sw/sweep.csv"]})
    assert "No other sweep ran a method of a's at one of its budgets" in md  # no empty table
    paired = md.split("## Semi-supervised vs what it builds on")[1]
    for against in ("finetune", "fixmatch", "pseudo"):
        assert f"| a | 20 | pseudo_fixmatch | {against} |" in paired
    # both FixMatch runs keep their pseudo-label diagnostic, each naming its method
    curves = list(csv.DictReader(open("sw/fixmatch_curves.csv")))
    assert sorted((c["method"], c["step"]) for c in curves) == [("fixmatch", "2"), ("pseudo_fixmatch", "2")]


def test_poisson_mbo_with_a_keep_fraction_is_refused(tiny_data, tmp_path, capsys):
    from tests.helpers import one_line_error

    assert main(["transfer", "sweep", "--encoder", str(_encoder(tmp_path)), "--methods", "pseudo",
                 "--pseudo-graph", "poisson_mbo", "--pseudo-keep", "0.5", "--data-dir", str(tiny_data)]) == 2
    assert "Poisson-MBO's labels have none" in one_line_error(capsys)


def test_labelling_scores_each_graph_on_validation_images(tiny_data, tmp_path, capsys):
    enc = _encoder(tmp_path)
    assert main(["transfer", "labelling", "--encoder", f"a={enc}", "--encoder", f"b={enc}", "--labels", "20",
                 "--seeds", "2", "--algorithms", "laplace,poisson_priors", "--fractions", "0.5,1",
                 "--data-dir", str(tiny_data), "--val-size", "50", "--out", "lab", "--no-progress"]) == 0
    rows = list(csv.DictReader(open("lab/labelling.csv")))
    # codes a, b and a+b x 2 seeds x 2 algorithms x 2 fractions
    assert len(rows) == 3 * 2 * 2 * 2 and {r["codes"] for r in rows} == {"a", "b", "a+b"}
    assert all(0 <= float(r["val_acc"]) <= 1 and r["commit"] for r in rows)
    assert "surest 50%" in open("lab/labelling.md").read()
    assert (tmp_path / "lab" / "labelling.png").stat().st_size > 1000


def test_accuracy_by_fraction_scores_the_surest_first():
    pred, truth = np.array([0, 1, 1, 0]), np.array([0, 1, 0, 1])
    margin = np.array([0.9, 0.8, 0.1, 0.2])  # the two right ones are the surest
    from aecls.transfer.labelling import accuracy_by_fraction

    assert accuracy_by_fraction(pred, margin, truth, (0.5, 1.0)) == {0.5: 1.0, 1.0: 0.5}


def test_a_sweep_scored_on_validation_images_does_not_depend_on_the_test_set(tiny_data, tmp_path):
    """With score val, test images and labels replaced (noise, wrong labels) give the same rows
    to the last digit; scored on the test set, they do not (so the comparison can fail)."""
    import shutil

    from aecls.data.idx import read_labels, write_idx

    other = tmp_path / "other_test"
    shutil.copytree(tiny_data, other)
    labels = read_labels(other / "t10k-labels-idx1-ubyte.gz")
    write_idx(other / "t10k-labels-idx1-ubyte.gz", ((labels + 1) % 10).astype(np.uint8))
    noise = np.random.default_rng(0).integers(0, 256, (len(labels), 28, 28)).astype(np.uint8)
    write_idx(other / "t10k-images-idx3-ubyte.gz", noise)
    enc = _encoder(tmp_path)

    def accuracies(data, score: str) -> list[str]:
        out = f"{data.name}_{score}"
        assert main(["transfer", "sweep", "--encoder", str(enc), "--labels", "20", "--seeds", "1",
                     "--epochs", "1", "--min-steps", "3", "--data-dir", str(data), "--val-size", "50",
                     "--no-progress", "--methods", "finetune,pseudo,graph_laplace,logreg_pixels",
                     "--score", score, "--out", out]) == 0
        rows = list(csv.DictReader(open(f"{out}/sweep.csv")))
        assert all(set(r) & {"test_acc", "val_acc"} == {f"{score}_acc"} for r in rows)  # named for it
        return [r[f"{score}_acc"] for r in rows]

    assert accuracies(tiny_data, "val") == accuracies(other, "val")
    assert accuracies(tiny_data, "test") != accuracies(other, "test")


def test_settings_added_since_a_sweep_was_recorded_are_read_at_their_defaults(tmp_path):
    import json

    from aecls.transfer.runs import recorded

    (tmp_path / "old.json").write_text(json.dumps({"settings": {"epochs": 10}}))
    made = recorded(tmp_path / "old.csv")
    assert made["epochs"] == 10 and made["score"] == "test" and made["pseudo_keep"] == 1.0


def test_repeated_makes_the_labelled_images_their_share():
    keep = np.ones(100, dtype=bool)
    labelled = np.arange(10)
    assert (graph.repeated(keep, labelled, 0.0) == np.arange(100)).all()
    rows = graph.repeated(keep, labelled, 0.5)  # 90 others: the 10 labelled 9 times
    assert len(rows) == 180 and np.isin(rows, labelled).mean() == 0.5
    assert sorted(set(rows.tolist())) == list(range(100))
