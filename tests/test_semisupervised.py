"""FixMatch: its loss, the published recipe (weak labelled views, EMA evaluation, the cosine
schedule), that it reads no label outside its labelled subset, its diagnostic, and its sweep rows."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from lightning.pytorch.callbacks import Callback

from aecls.core.errors import AeclsError
from aecls.data import FashionMNISTDataModule
from aecls.data.idx import read_labels, write_idx
from aecls.data.subsets import stratified_subset, train_val_split
from aecls.modules import AutoEncoder, OptimConfig, semisupervised
from aecls.modules.encoders import export_encoder
from aecls.modules.semisupervised import EvalEMA, FixMatch, PseudoLabelMonitor, fixmatch_loss
from aecls.nets import NetConfig
from aecls.training.trainer import make_trainer
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
    curves = list(csv.DictReader(open(tmp_path / "sw" / "fixmatch_curves.csv")))
    assert [int(c["step"]) for c in curves] == [3]  # after the last step
    assert {"mask_rate", "pseudo_acc", "acc", "scored_acc"} <= set(curves[0])
    assert (tmp_path / "sw" / "fixmatch_curves.png").stat().st_size > 1000


def test_a_run_stopped_after_its_curve_is_saved_leaves_its_curve_once(tiny_data, tmp_path):
    cfg = SweepConfig(encoder=str(_encoder(tmp_path)), labels=[BUDGET], seeds=2, epochs=1, min_steps=3,
                      fixmatch_steps=3, batch_size=16, data_dir=str(tiny_data), val_size=VAL,
                      out=str(tmp_path / "sw"), methods=("fixmatch",))
    run_sweep(cfg, progress=False)
    sweep_csv = tmp_path / "sw" / "sweep.csv"
    lines = sweep_csv.read_text().splitlines(keepends=True)
    sweep_csv.write_text("".join(lines[:-1]))  # seed 1's row lost, its curve kept: as if killed between
    run_sweep(cfg, progress=False)
    curves = list(csv.DictReader(open(tmp_path / "sw" / "fixmatch_curves.csv")))
    assert sorted((c["seed"], c["step"]) for c in curves) == [("0", "3"), ("1", "3")]


def test_curves_from_before_they_named_their_method_are_fixmatchs(tmp_path):
    from aecls.transfer.sweep import _read_curves

    path = tmp_path / "fixmatch_curves.csv"
    path.write_text("labels,seed,step,mask_rate,pseudo_acc,acc,scored_acc\n"
                    "20,0,3,0.5,0.9,0.7,0.6\n20,1,3,0.5,0.9,0.7,0.6\n")
    rows = [{"labels": "20", "seed": "0", "method": "fixmatch"},
            {"labels": "20", "seed": "1", "method": "pseudo_fixmatch"}]  # seed 1: no fixmatch row
    assert [(c["seed"], c["method"]) for c in _read_curves(path, rows)] == [("0", "fixmatch")]


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


def _dm(tiny_data: Path, **kw) -> FashionMNISTDataModule:
    return FashionMNISTDataModule(data_dir=str(tiny_data), n_labels=BUDGET, seed=0, val_size=VAL,
                                  batch_size=16, **kw)


def test_labelled_batches_get_the_weak_view(tiny_data, tmp_path, monkeypatch):
    seen, original = [], semisupervised.augment

    def spy(x, *args, **kwargs):
        seen.append(x.detach().clone())
        return original(x, *args, **kwargs)

    monkeypatch.setattr(semisupervised, "augment", spy)
    dm = _dm(tiny_data)
    dm.setup()
    model = FixMatch(mode="finetune", encoder_path=str(_encoder(tmp_path)), unlabelled_ratio=2)
    make_trainer(-1, max_steps=2, limit_val_batches=0).fit(model.set_unlabelled(dm.unlabelled_images()),
                                                            datamodule=dm)
    labelled = dm.splits["train"][0].unsqueeze(1).float() / 255
    # each step: the labelled batch (a batch of the subset) and the unlabelled images get a weak view
    firsts = seen[0::2]
    assert [len(x) for x in firsts] == [16, BUDGET - 16]
    assert all(any(torch.equal(img, ref) for ref in labelled) for x in firsts for img in x)
    again = FixMatch(mode="finetune", encoder_path=str(_encoder(tmp_path)))
    with pytest.raises(AeclsError, match="augment to false"):
        make_trainer(-1, max_steps=1, limit_val_batches=0).fit(again.set_unlabelled(dm.unlabelled_images()),
                                                                datamodule=_dm(tiny_data, augment=True))


class _KeepTrained(Callback):
    """The trained weights as training ends, before the weight average is copied in."""

    def on_train_end(self, trainer, pl_module) -> None:
        self.trained = {k: v.detach().clone() for k, v in pl_module.state_dict().items()}
        ema = next(c for c in trainer.callbacks if isinstance(c, EvalEMA))
        self.average = {k: v.detach().clone() for k, v in ema.averaged().state_dict().items()}


def test_the_weight_average_is_what_is_scored(tiny_data, tmp_path):
    dm = _dm(tiny_data)
    model = FixMatch(mode="finetune", encoder_path=str(_encoder(tmp_path)), eval_ema=0.9, unlabelled_ratio=2)
    keep = _KeepTrained()
    trainer = make_trainer(-1, max_steps=5, limit_val_batches=0, callbacks=[keep])
    trainer.fit(model.set_unlabelled(dm.unlabelled_images()), datamodule=dm)
    weights = [k for k in keep.trained if "running" not in k and "num_batches" not in k]
    assert not all(torch.equal(keep.trained[k], keep.average[k]) for k in weights)  # they differ ...
    after = model.state_dict()
    assert all(torch.equal(after[k], keep.average[k]) for k in weights)  # ... and the average is kept
    x, y = dm.splits["test"]
    model.eval()
    with torch.no_grad():
        mine = float((model(x.unsqueeze(1).float() / 255).argmax(1) == y).float().mean())
    assert trainer.test(model, datamodule=dm, verbose=False)[0]["test/acc"] == pytest.approx(mine)


def _diagnosed_fit(tiny_data: Path, encoder: Path, wrong_val: bool) -> tuple[list[dict], list[torch.Tensor]]:
    L.seed_everything(0, verbose=False)
    dm = _dm(tiny_data)
    dm.setup()
    if wrong_val:
        x, y = dm.splits["val"]
        dm.splits["val"] = (x, (y + 1) % 10)
    model = FixMatch(mode="finetune", encoder_path=str(encoder), threshold=0.2, unlabelled_ratio=2)
    monitor = PseudoLabelMonitor(every_n_steps=2, n_images=40)
    make_trainer(-1, max_steps=5, limit_val_batches=0, callbacks=[monitor]).fit(
        model.set_unlabelled(dm.unlabelled_images()), datamodule=dm)
    return monitor.history, [p.detach().clone() for p in model.parameters()]


def test_the_pseudo_label_diagnostic_reads_validation_labels_and_trains_on_none(tiny_data, tmp_path):
    encoder = _encoder(tmp_path)
    history, weights = _diagnosed_fit(tiny_data, encoder, wrong_val=False)
    assert [h["step"] for h in history] == [2, 4, 5]
    assert all(0 <= h["mask_rate"] <= 1 and 0 <= h["acc"] <= 1 for h in history)
    wrong_history, wrong_weights = _diagnosed_fit(tiny_data, encoder, wrong_val=True)
    assert all(torch.equal(a, b) for a, b in zip(weights, wrong_weights, strict=True))  # same training
    assert [h["acc"] for h in history] != [h["acc"] for h in wrong_history]  # another diagnostic
    assert [h["mask_rate"] for h in history] == [h["mask_rate"] for h in wrong_history]


def test_the_published_schedule_ends_at_cos_7pi_16(tiny_data, tmp_path):
    dm = _dm(tiny_data)
    model = FixMatch(mode="finetune", encoder_path=str(_encoder(tmp_path)), unlabelled_ratio=1, eval_ema=0)
    assert model.optim.name == "sgd" and model.optim.scheduler == "cosine_steps"
    trainer = make_trainer(-1, max_steps=8, limit_val_batches=0)
    trainer.fit(model.set_unlabelled(dm.unlabelled_images()), datamodule=dm)
    head_lr = trainer.optimizers[0].param_groups[0]["lr"]
    assert head_lr == pytest.approx(0.03 * np.cos(7 * np.pi / 16))
    defaults = trainer.optimizers[0].defaults
    assert defaults["nesterov"] and defaults["momentum"] == 0.9 and defaults["weight_decay"] == 5e-4
