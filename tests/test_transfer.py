"""The label-efficiency sweep on tiny data: outputs, rows, and clear errors."""

from __future__ import annotations

import csv
from pathlib import Path

import torch

from aecls.cli import main
from aecls.encoders import export_encoder
from aecls.modules import AutoEncoder
from aecls.nets import NetConfig
from aecls.transfer import METHODS


def _encoder(tmp_path) -> Path:
    torch.manual_seed(0)
    ae = AutoEncoder(NetConfig(latent_dim=6, n_channels=4, hidden=16))
    return export_encoder(tmp_path / "enc.pt", ae.encoder, ae.net_cfg, "cae")


def test_sweep_writes_csv_markdown_png(tiny_data, tmp_path, capsys):
    enc = _encoder(tmp_path)
    argv = ["transfer", "sweep", "--encoder", str(enc), "--labels", "20,all", "--seeds", "2",
            "--epochs", "1", "--min-steps", "3", "--data-dir", str(tiny_data), "--val-size", "50",
            "--out", "sw", "--no-progress"]
    assert main(argv) == 0
    rows = list(csv.DictReader(open("sw/sweep.csv")))
    assert len(rows) == 2 * 2 * len(METHODS)
    assert {r["method"] for r in rows} == set(METHODS) and {r["labels"] for r in rows} == {"20", "350"}
    assert all(0.0 <= float(r["test_acc"]) <= 1.0 for r in rows)
    table = Path("sw/sweep.md").read_text().splitlines()
    header = next(i for i, line in enumerate(table) if line.startswith("| labels"))
    assert table[header].count("|") == len(METHODS) + 2
    assert [line.split("|")[1].strip() for line in table[header + 2 : header + 4]] == ["20", "350"]
    assert " ± " in table[header + 2]
    assert Path("sw/sweep.png").stat().st_size > 5000
    assert "| labels |" in capsys.readouterr().out


def test_budget_larger_than_data_is_a_clear_error(tiny_data, tmp_path, capsys):
    enc = _encoder(tmp_path)
    argv = ["transfer", "sweep", "--encoder", str(enc), "--labels", "5000", "--seeds", "1",
            "--data-dir", str(tiny_data), "--val-size", "50", "--no-progress",
            "--methods", "logreg_pixels"]
    assert main(argv) == 2
    assert "label budget 5000" in capsys.readouterr().err


def test_bad_encoder_path(tiny_data, capsys):
    assert main(["transfer", "sweep", "--encoder", "missing.pt", "--data-dir", str(tiny_data)]) == 2
    assert "encoder not found" in capsys.readouterr().err


def test_mnist_pretraining_transfers_to_fashion(tiny_data, tmp_path, capsys):
    """Seed 001's experiment on synthetic files: a DAE pretrained on 'MNIST', fine-tuned on Fashion."""
    from tests.conftest import write_dataset
    from tests.test_cli import fit

    mnist = write_dataset(tmp_path / "mnist_root" / "MNIST" / "raw", seed=7)  # torchvision layout
    assert fit(tiny_data, "dae.yaml", "--data.dataset", "mnist", "--data.data_dir",
               str(tmp_path / "mnist_root"), "--trainer.max_epochs", "1", "--test_after_fit", "false") == 0
    (ckpt,) = Path("lightning_logs/dae").glob("version_0/checkpoints/best-*.ckpt")
    assert mnist.is_dir()
    argv = ["transfer", "sweep", "--encoder", str(ckpt), "--labels", "50", "--seeds", "1",
            "--epochs", "1", "--min-steps", "3", "--data-dir", str(tiny_data), "--val-size", "50",
            "--methods", "scratch,finetune", "--out", "mn", "--no-progress"]
    assert main(argv) == 0
    rows = list(csv.DictReader(open("mn/sweep.csv")))
    assert [r["method"] for r in rows] == ["scratch", "finetune"]
