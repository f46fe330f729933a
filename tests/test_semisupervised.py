"""FixMatch: its loss, that it reads no label outside its labelled subset, and its sweep rows."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import lightning as L
import numpy as np
import torch

from aecls.data import FashionMNISTDataModule
from aecls.data.idx import read_labels, write_idx
from aecls.data.subsets import stratified_subset, train_val_split
from aecls.encoders import export_encoder
from aecls.modules import AutoEncoder, OptimConfig
from aecls.modules.semisupervised import FixMatch, fixmatch_loss
from aecls.nets import NetConfig
from aecls.training import make_trainer
from aecls.transfer.config import SweepConfig
from aecls.transfer.sweep import run_sweep

BUDGET, VAL = 30, 50


def test_fixmatch_loss_counts_only_confident_pseudo_labels():
    weak = torch.tensor([[10.0, 0, 0], [0.1, 0, 0]])  # confident (class 0), not confident
    strong = torch.tensor([[0.0, 5, 0], [0, 5, 0]])  # both predict class 1
    loss, mask = fixmatch_loss(weak, strong, threshold=0.9)
    expected = torch.nn.functional.cross_entropy(strong[:1], torch.tensor([0])) / 2
    assert float(mask) == 0.5 and torch.isclose(loss, expected)
    assert float(fixmatch_loss(weak, strong, threshold=1.0)[0]) == 0.0


def _encoder(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    ae = AutoEncoder(NetConfig(latent_dim=8, n_channels=4, hidden=16))
    return export_encoder(tmp_path / "enc.pt", ae.encoder, ae.net_cfg, "cae")


def _relabelled(src: Path, dst: Path) -> Path:
    """A copy of the data whose training labels are all wrong outside the labelled subset that
    the FixMatch runs below draw."""
    shutil.copytree(src, dst)
    name = "train-labels-idx1-ubyte.gz"
    labels = read_labels(dst / name)
    train, _ = train_val_split(len(labels), VAL, 0)
    subset = train[stratified_subset(labels[train], BUDGET, 0)]
    wrong = np.ones(len(labels), bool)
    wrong[subset] = False
    write_idx(dst / name, np.where(wrong, (labels + 1) % 10, labels).astype(np.uint8))
    return dst


def _fixmatch_weights(subset_from: Path, data: Path, encoder: Path,
                      wrong_subset: bool = False) -> list[torch.Tensor]:
    """FixMatch's weights after a few steps on the labelled subset drawn from `subset_from`'s
    files (the DataModule's stratified draw, shared by every method, needs every label to
    balance classes), with the unlabelled images it reads itself coming from `data`'s files."""
    L.seed_everything(0, verbose=False)
    dm = FashionMNISTDataModule(data_dir=str(subset_from), n_labels=BUDGET, seed=0, val_size=VAL,
                                batch_size=16)
    dm.setup()  # the labelled subset: its images and labels only
    if wrong_subset:
        x, y = dm.splits["train"]
        dm.splits["train"] = (x, (y + 1) % 10)
    dm.hparams.data_dir = str(data)
    model = FixMatch(mode="finetune", encoder_path=str(encoder), optim=OptimConfig(lr=3e-3),
                     threshold=0.5, unlabelled_ratio=2)
    make_trainer(-1, max_steps=6, limit_val_batches=0).fit(model.set_unlabelled(dm.unlabelled_images()),
                                                            datamodule=dm)
    return [p.detach().clone() for p in model.parameters()]


def test_fixmatch_reads_no_label_outside_its_subset(tiny_data, tmp_path):
    encoder = _encoder(tmp_path)
    clean = _fixmatch_weights(tiny_data, tiny_data, encoder)
    outside = _relabelled(tiny_data, tmp_path / "outside")
    others_wrong = _fixmatch_weights(tiny_data, outside, encoder)
    assert all(torch.equal(a, b) for a, b in zip(clean, others_wrong, strict=True))
    # ... while wrong labels inside the subset change the fit (so the comparison can fail)
    subset_wrong = _fixmatch_weights(tiny_data, tiny_data, encoder, wrong_subset=True)
    assert not all(torch.equal(a, b) for a, b in zip(clean, subset_wrong, strict=True))


def test_a_sweep_with_fixmatch_writes_its_rows(tiny_data, tmp_path):
    cfg = SweepConfig(encoder=str(_encoder(tmp_path)), labels=[BUDGET], seeds=1, epochs=1, min_steps=3,
                      fixmatch_steps=3, batch_size=16, data_dir=str(tiny_data), val_size=VAL,
                      out=str(tmp_path / "sw"), methods=("frozen", "fixmatch", "logreg_pixels"))
    rows = run_sweep(cfg, progress=False)
    assert [r["method"] for r in rows] == ["frozen", "fixmatch", "logreg_pixels"]
    written = list(csv.DictReader(open(tmp_path / "sw" / "sweep.csv")))
    assert [r["method"] for r in written] == ["frozen", "fixmatch", "logreg_pixels"]
    assert "fixmatch" in (tmp_path / "sw" / "sweep.md").read_text()
    assert (tmp_path / "sw" / "sweep.png").stat().st_size > 1000


def test_an_ema_teacher_gives_the_pseudo_labels_and_is_not_trained(tiny_data, tmp_path):
    dm = FashionMNISTDataModule(data_dir=str(tiny_data), n_labels=BUDGET, seed=0, val_size=VAL, batch_size=16)
    model = FixMatch(mode="finetune", encoder_path=str(_encoder(tmp_path)), optim=OptimConfig(lr=3e-3),
                     threshold=0.5, teacher_ema=0.9)
    make_trainer(-1, max_steps=4, limit_val_batches=0).fit(model.set_unlabelled(dm.unlabelled_images()),
                                                            datamodule=dm)
    student = dict(model.head.named_parameters())
    teacher = dict(model.teacher.module.head.named_parameters())
    assert teacher.keys() == student.keys()
    assert all(not torch.equal(teacher[k], student[k]) for k in student)  # a moving average, behind
    assert not any(k.startswith("teacher") for k in model.state_dict())  # not saved, not optimised
