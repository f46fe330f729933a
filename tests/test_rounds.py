"""Issue #52: label propagation in rounds (the `rounds` sweep method): the weights of a propagated
label (certainty, class balance), the draw that trains on them, and a tiny sweep that keeps a row
per round."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from aecls.core.paths import ROUNDS_CSV, ROUNDS_PNG, SWEEP_CSV
from aecls.modules.encoders import export_encoder
from aecls.nets import NetConfig, build_encoder
from aecls.transfer import graph
from aecls.transfer.config import SweepConfig
from aecls.transfer.runs import read_rows
from tests.conftest import write_dataset


def test_certainty_is_one_for_one_class_and_zero_for_all_alike():
    scores = np.array([[0.0, 1.0, 0.0], [0.5, 0.5, 0.5], [0.0, 0.0, 0.0], [0.2, 0.7, 0.1]])
    c = graph.certainty(scores)
    assert c[0] == pytest.approx(1) and c[1] == pytest.approx(0) and c[2] == pytest.approx(0)
    assert 0 < c[3] < 1


def test_weighted_labels_balance_the_classes_and_leave_the_subset_apart():
    # six images outside the subset: four of class 0, two of class 1, all as sure
    scores = np.array([[1.0, 0.0]] * 4 + [[0.0, 1.0]] * 2 + [[0.3, 0.7], [0.6, 0.4]])
    labelled, labels = np.array([6, 7]), np.array([0, 1])
    y, w = graph.weighted_labels(scores, labelled, labels, "certainty")
    assert list(y) == [0, 0, 0, 0, 1, 1, 0, 1]  # the subset keeps its own labels
    assert w[6] == w[7] == 0  # drawn apart
    assert w[y == 0][:4].sum() == pytest.approx(w[4:6].sum())  # each class weighs the same
    y, w = graph.weighted_labels(scores, labelled, labels, "none")
    assert list(w) == [1, 1, 1, 1, 1, 1, 0, 0]
    # keep: only the half the scores are surest of weighs (as pseudo keeps them), balanced among them
    scores = np.array([[1.0, 0], [0.95, 0.05], [0.6, 0.4], [0.55, 0.45], [0, 1.0], [0.05, 0.95],
                       [1, 0], [0, 1]])
    y, w = graph.weighted_labels(scores, labelled, labels, "none", keep=0.5)
    assert list(w) == [1, 1, 0, 0, 1, 1, 0, 0]
    y, w = graph.weighted_labels(scores, labelled, labels, "certainty", keep=0.5)
    assert list(w > 0) == [True, True, False, False, True, True, False, False]
    c = graph.certainty(scores)  # class 0's frequency: the two kept (rows 2, 3 weigh nothing)
    assert w[0] == pytest.approx(c[0] / 2) and w[5] == pytest.approx(c[5] / 2)
    # among (rounds_keep first): the given nodes weigh, whatever these scores are surest of; the
    # labels are still these scores' (row 2 now class 1)
    among = np.array([False, False, True, True, False, False, True, False])
    flipped = scores.copy()
    flipped[2] = [0.1, 0.9]
    y, w = graph.weighted_labels(flipped, labelled, labels, "none", keep=0.5, among=among)
    assert list(w) == [0, 0, 1, 1, 0, 0, 0, 0] and y[2] == 1  # the subset (row 6) apart still


def test_the_draw_follows_the_weights_and_repeats_the_subset():
    w = np.array([1.0, 1.0, 1.0, 0.0, 0.0])
    assert list(graph.drawn(w, np.array([3, 4]), 0.0, seed=0)) == [0, 1, 2, 3, 4]  # equal: each once
    w = np.array([0.9, 0.1, 0.0, 0.0, 0.0, 0.0])
    rows = graph.drawn(w, np.array([4, 5]), 0.5, seed=1)
    assert list(rows) == list(graph.drawn(w, np.array([4, 5]), 0.5, seed=1))  # seeded
    drawn, subset = rows[:2], rows[2:]
    assert set(drawn) <= {0, 1} and list(subset) == [4, 5]  # two drawn, the subset half of all
    many = graph.drawn(np.array([0.9, 0.1] + [0.0] * 2), np.array([2, 3]), 0.0, seed=2)
    assert len(many) == 4
    counts = np.bincount(graph.drawn(np.r_[np.full(1000, 0.9), np.full(1000, 0.1), 0.0], np.array([2000]),
                                     0.0, seed=3)[:2000] < 1000, minlength=2)
    assert counts[0] < counts[1]  # the heavier half drawn more (positions < 1000: the 0.9 ones)


@pytest.mark.slow
def test_a_rounds_sweep_keeps_a_row_per_round(tmp_path):
    from aecls.transfer.sweep import run_sweep

    data = write_dataset(tmp_path / "data", n_train=1200, n_test=200)
    net = NetConfig(n_channels=4, latent_dim=6).validate()
    torch.manual_seed(0)
    encoder = export_encoder("enc.pt", build_encoder(net), net, "cae")
    cfg = SweepConfig(encoder=str(encoder), labels=[20], seeds=1, methods=("rounds",), epochs=1, min_steps=2,
                      batch_size=64, val_size=200, data_dir=str(data), out="sw", rounds=2, pseudo_passes=1)
    rows = run_sweep(cfg, progress=False)
    assert [r["method"] for r in rows] == ["rounds"] and 0 <= float(rows[0]["pseudo_label_acc"]) <= 1
    curve = read_rows(Path("sw") / ROUNDS_CSV)
    assert [c["round"] for c in curve] == ["1", "2"] and all(0 <= float(c["val_acc"]) <= 1 for c in curve)
    assert (Path("sw") / ROUNDS_PNG).stat().st_size > 5000
    run_sweep(cfg, progress=False)  # continued: nothing to run, the curve kept once
    assert len(read_rows(Path("sw") / ROUNDS_CSV)) == 2 and len(read_rows(Path("sw") / SWEEP_CSV)) == 1


@pytest.mark.slow
def test_round_r_of_a_longer_run_is_the_run_of_r_rounds(tmp_path):
    """What lets the full run choose the number of rounds from one grid of longer runs
    (selection.best_round): scored on validation images, a 1-round run scores what round 1 of a
    2-round run's curve says, on the same seed."""
    from dataclasses import replace

    from aecls.transfer.sweep import run_sweep

    data = write_dataset(tmp_path / "data", n_train=1200, n_test=200)
    net = NetConfig(n_channels=4, latent_dim=6).validate()
    torch.manual_seed(0)
    encoder = export_encoder("enc.pt", build_encoder(net), net, "cae")
    cfg = SweepConfig(encoder=str(encoder), labels=[20], seeds=1, methods=("rounds",), epochs=1, min_steps=2,
                      batch_size=64, val_size=200, data_dir=str(data), out="two", rounds=2, pseudo_passes=1,
                      score="val")
    run_sweep(cfg, progress=False)
    one = run_sweep(replace(cfg, rounds=1, out="one"), progress=False)
    curve = read_rows(Path("two") / ROUNDS_CSV)
    assert float(one[0]["val_acc"]) == pytest.approx(float(curve[0]["val_acc"]), abs=1e-9)
    assert float(read_rows(Path("one") / ROUNDS_CSV)[0]["val_acc"]) == float(curve[0]["val_acc"])


@pytest.mark.slow
def test_round_one_is_pseudo_and_a_tuned_round_r_is_the_run_of_r_rounds(tmp_path):
    """The rounds start where `pseudo` ends: with weighting none, round 1 trains on pseudo's kept
    images and tunes on the subset as pseudo does, so it scores what pseudo scores; with tuning,
    round r of a longer run's curve (tuned) is still what a run of r rounds ends with."""
    from dataclasses import replace

    from aecls.transfer.sweep import run_sweep

    data = write_dataset(tmp_path / "data", n_train=1200, n_test=200)
    net = NetConfig(n_channels=4, latent_dim=6).validate()
    torch.manual_seed(0)
    encoder = export_encoder("enc.pt", build_encoder(net), net, "cae")
    cfg = SweepConfig(encoder=str(encoder), labels=[20], seeds=1, methods=("pseudo", "rounds"), epochs=1,
                      min_steps=2, batch_size=64, val_size=200, data_dir=str(data), out="one", rounds=1,
                      pseudo_passes=1, pseudo_keep=0.5, pseudo_labelled_share=0.5, pseudo_tune_steps=3,
                      rounds_weighting="none", score="val")
    pseudo, rounds = run_sweep(cfg, progress=False)
    assert float(rounds["val_acc"]) == pytest.approx(float(pseudo["val_acc"]), abs=1e-9)
    curve = read_rows(Path("one") / ROUNDS_CSV)
    assert float(curve[0]["val_acc"]) == float(rounds["val_acc"])  # the tuned network
    assert curve[0]["trained_val_acc"] != ""  # and the round's own, which the next round embeds with
    # the labels of the half it drew from: pseudo's kept images less the subset (20, all right)
    n, right = int(pseudo["pseudo_images"]), float(pseudo["pseudo_label_acc"]) * int(pseudo["pseudo_images"])
    assert float(curve[0]["kept_label_acc"]) == pytest.approx((right - 20) / (n - 20), abs=2e-3)
    certain = replace(cfg, methods=("rounds",), rounds_weighting="certainty")
    run_sweep(replace(certain, rounds=2, out="two"), progress=False)
    two = read_rows(Path("two") / ROUNDS_CSV)
    one = run_sweep(replace(certain, out="c1"), progress=False)
    assert float(one[0]["val_acc"]) == pytest.approx(float(two[0]["val_acc"]), abs=1e-9)
    assert [c["round"] for c in two] == ["1", "2"]
    # each round from the pretrained encoder: round 1 is the same run, round 2 trains afresh
    run_sweep(replace(certain, rounds=2, rounds_start="encoder", out="fresh"), progress=False)
    fresh = read_rows(Path("fresh") / ROUNDS_CSV)
    assert fresh[0]["val_acc"] == two[0]["val_acc"] and len(fresh) == 2
    # round 1's kept images every round: round 1 is the same run
    run_sweep(replace(certain, rounds=2, rounds_keep="first", out="kf"), progress=False)
    kf = read_rows(Path("kf") / ROUNDS_CSV)
    assert kf[0]["val_acc"] == two[0]["val_acc"] and kf[0]["kept_label_acc"] == two[0]["kept_label_acc"]
    with pytest.raises(Exception, match="rounds_start must be one of"):
        replace(cfg, rounds_start="first").validate()
    with pytest.raises(Exception, match="rounds_keep must be one of"):
        replace(cfg, rounds_keep="last").validate()


def test_the_rounds_are_chosen_over_every_round_of_every_point():
    import pandas as pd

    from aecls.transfer.selection import best_round

    rows = [("k10", 1, 0, 0.70), ("k10", 2, 0, 0.74), ("k10", 1, 1, 0.72), ("k10", 2, 1, 0.78),
            ("k20", 1, 0, 0.75), ("k20", 2, 0, 0.73), ("k20", 1, 1, 0.75), ("k20", 2, 1, 0.75),
            ("k30", 1, 0, 0.99)]  # a point not in the grid asked about
    curves = pd.DataFrame([{"sweep": p, "labels": 100, "round": r, "seed": s, "val_acc": a}
                           for p, r, s, a in rows])
    points = {"k10": {}, "k20": {}}
    assert best_round(curves, 100, points) == ("k10", 2, pytest.approx(0.76))  # over k20 round 1: 0.75
    tied = curves.assign(val_acc=0.5)
    assert best_round(tied, 100, points)[:2] == ("k10", 1)  # ties: the fewer rounds, the earlier point
    with pytest.raises(Exception, match="no validation rows to choose the rounds at 1000 labels"):
        best_round(curves, 1000, points)
