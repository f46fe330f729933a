"""Issue #38's measure of the registry: a second AutoEncoder variant, a sparse autoencoder, added as
what a researcher writes (its module and `register` call, one config, this test) reaches a fit,
`aecls test`, a study, a transfer sweep and the report's reconstructions, baselines and latents
with no edit anywhere else in aecls. It is registered for this test only: kept as a family, every
report would list it as missing until the pipeline fits it.

The module below is what aecls/modules/sparse.py would hold."""

from __future__ import annotations

import csv
from pathlib import Path

import optuna
import pytest
import torch
import yaml

from aecls.cli import main
from aecls.core.paths import find_config
from aecls.modules import registry
from aecls.modules.autoencoder import AutoEncoder
from aecls.modules.optim import OptimConfig
from aecls.modules.registry import Family
from aecls.nets import NetConfig
from tests.helpers import finished


class SparseAE(AutoEncoder):
    """An autoencoder whose codes pay an L1 penalty of weight `sparsity` (Ng's sparse AE, with the
    L1 form of the activity penalty)."""

    def __init__(self, net: NetConfig | None = None, optim: OptimConfig | None = None, loss: str = "mse",
                 noise_sigma: float = 0.0, sparsity: float = 1e-3) -> None:
        super().__init__(net, optim, loss, noise_sigma)
        self.save_config(loss=loss, noise_sigma=noise_sigma, sparsity=sparsity)

    def compute(self, batch, stage: str) -> dict[str, torch.Tensor]:
        metrics = super().compute(batch, stage)
        metrics["code_l1"] = self.encoder(batch[0]).abs().mean()  # (B, latent) -> mean |z|
        metrics["loss"] = metrics["loss"] + self.hparams.sparsity * metrics["code_l1"]
        return metrics


# The penalty's weight changes val/loss: a study compares the clean-image MSE, as for cae/dae. Its
# study keys are read from SparseAE's arguments (sparsity among them), not listed.
SPARSE = Family("sparse_ae", SparseAE, "autoencoder", score="val/clean_mse",
                loss_keys={"loss", "noise_sigma", "sparsity"})


@pytest.fixture
def sparse_family(monkeypatch):
    registry.families()  # the package's own families first, so this one comes last
    monkeypatch.setitem(registry._FAMILIES, SPARSE.name, SPARSE)  # as registry.register does; undone after
    config = yaml.safe_load(find_config("cae").read_text())
    config["model"] = {"class_path": f"{__name__}.SparseAE",
                       "init_args": {**config["model"]["init_args"], "sparsity": 0.01}}
    Path("configs").mkdir()
    Path("configs/sparse_ae.yaml").write_text(yaml.safe_dump(config))  # ./configs is read first
    return SPARSE


def test_a_sparse_autoencoder_reaches_fit_test_study_sweep_and_report(sparse_family, tiny_data, capsys):
    data = ["--data-dir", str(tiny_data)]
    assert main(["fit", "--config", "configs/sparse_ae.yaml", "--data.data_dir", str(tiny_data),
                 "--data.val_size", "50", "--data.batch_size", "32", "--model.init_args.net.n_channels", "4",
                 "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "3",
                 "--test_after_fit", "false"]) == 0
    (ckpt,) = Path("lightning_logs/sparse_ae").glob("version_0/checkpoints/best-*.ckpt")
    assert torch.load(ckpt, weights_only=True)[registry.FAMILY_KEY] == "sparse_ae"

    capsys.readouterr()
    assert main(["test", "--ckpt", str(ckpt), *data, "--no-baselines"]) == 0
    assert f"SparseAE {ckpt}" in capsys.readouterr().out

    Path("sparse_study.yaml").write_text(yaml.safe_dump({
        "model": "sparse_ae", "epochs": 1, "n_trials": 2, "seed": 0, "pruner": "none",
        "data": {"val_size": 50, "batch_size": 32},
        "space": {"n_channels": 4, "sparsity": {"type": "float", "low": 1e-4, "high": 1.0, "log": True}}}))
    assert main(["study", "run", "sparse_study.yaml", *data, "--no-progress"]) == 0
    study = optuna.load_study(study_name="sparse_study", storage="sqlite:///optuna.db")
    trials = finished(study)
    assert len(trials) == 2 and all("sparsity" in t.params for t in trials)
    assert study.metric_names == ["val/clean_mse"]  # the family's score, not its val/loss

    assert main(["transfer", "sweep", "--encoder", str(ckpt), "--labels", "20", "--seeds", "1",
                 "--methods", "frozen", "--epochs", "1", "--min-steps", "2", *data, "--val-size", "50",
                 "--out", "sw", "--no-progress"]) == 0
    (row,) = csv.DictReader(open("sw/sweep.csv"))
    assert row["method"] == "frozen" and 0 <= float(row["test_acc"]) <= 1

    assert main(["report", "--name", "sparse", *data]) == 0
    text = Path("reports/sparse/report.md").read_text()
    assert "| SPARSE_AE fit of configs/sparse_ae.yaml, latent 14, epoch 1" in text  # baselines
    assert "- SPARSE_AE fit of configs/sparse_ae.yaml" in text  # reconstructions
    assert "## Latent space of the test set (SPARSE_AE)" in text
    for png in ("reconstructions", "latent_pca", "latent_tsne", "interpolation", "samples"):
        assert f"({png}.png)" in text and Path(f"reports/sparse/{png}.png").stat().st_size > 2000
