"""Classifier: scratch / frozen / finetune, pretrained encoders, test-time reports."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from aecls.core.errors import AeclsError
from aecls.data import FashionMNISTDataModule
from aecls.modules import VAE, AutoEncoder, Classifier, OptimConfig
from aecls.modules.encoders import export_encoder, load_encoder
from aecls.nets import NetConfig
from aecls.training.trainer import make_trainer
from tests.helpers import fit

NET = NetConfig(latent_dim=6, n_channels=4, hidden=16, batch_norm=True)


@pytest.fixture
def exported(tmp_path) -> Path:
    torch.manual_seed(1)
    ae = AutoEncoder(NET)
    return export_encoder(tmp_path / "enc.pt", ae.encoder, ae.net_cfg, "cae")


def _train(model, tiny_data, epochs=2):
    dm = FashionMNISTDataModule(data_dir=str(tiny_data), val_size=50, batch_size=64)
    make_trainer(epochs, limit_val_batches=1).fit(model, datamodule=dm)
    return model


def _state(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


@pytest.mark.parametrize("net", [NET, NetConfig(arch="mlp", latent_dim=6, mlp_widths=[32]),
                                 NetConfig(arch="cnn", latent_dim=16, n_channels=4, dropout=0.2)])
def test_scratch_shapes_and_gradients(net):
    model = Classifier(net)
    x, y = torch.rand(8, 1, 28, 28), torch.arange(8) % 10
    assert model(x).shape == (8, 10)
    model.compute((x, y), "train")["loss"].backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_pretrained_encoder_is_the_exported_one(exported):
    model = Classifier(mode="frozen", encoder_path=str(exported))
    enc, _, _ = load_encoder(exported)
    x = torch.rand(4, 1, 28, 28)
    model.eval()
    assert torch.equal(model.features(x), enc.eval()(x))
    assert model.net_cfg.latent_dim == 6


def test_frozen_mode_freezes_encoder_and_bn(exported, tiny_data):
    model = Classifier(mode="frozen", encoder_path=str(exported))
    enc0, head0 = _state(model.encoder), _state(model.head)
    _train(model, tiny_data)
    assert all(torch.equal(enc0[k], v) for k, v in model.encoder.state_dict().items())  # incl. BN stats
    assert any(not torch.equal(head0[k], v) for k, v in model.head.state_dict().items())


def _ae_checkpoint(path: Path) -> Path:
    from aecls.training.trainer import make_trainer

    torch.manual_seed(1)
    trainer = make_trainer(1)
    trainer.strategy.connect(AutoEncoder(NET))
    trainer.save_checkpoint(path)
    return path


@pytest.mark.parametrize("source", ["export", "checkpoint"])
@pytest.mark.parametrize("freeze_epochs", [0, 1])
def test_finetune_changes_encoder_and_head(exported, tiny_data, tmp_path, freeze_epochs, source):
    path = exported if source == "export" else _ae_checkpoint(tmp_path / "ae.ckpt")
    model = Classifier(mode="finetune", encoder_path=str(path), freeze_epochs=freeze_epochs,
                       optim=OptimConfig(scheduler="none"))
    enc0, head0 = _state(model.encoder), _state(model.head)
    _train(model, tiny_data)
    changed = {k for k, v in model.encoder.state_dict().items() if not torch.equal(enc0[k], v)}
    assert any(k.endswith(".weight") for k in changed)
    # BatchNorm trains too: an encoder left in eval mode (as a loaded checkpoint comes) would keep
    # its pretraining statistics and silently fine-tune a different network.
    assert any(k.endswith("running_mean") for k in changed)
    assert any(not torch.equal(head0[k], v) for k, v in model.head.state_dict().items())


def test_encoder_from_checkpoints(tmp_path, tiny_data):
    from aecls.training.trainer import make_trainer

    for module, kind in ((AutoEncoder(NET), "cae"), (VAE(NET), "vae")):
        trainer = make_trainer(1)
        trainer.strategy.connect(module)
        path = tmp_path / f"{kind}.ckpt"
        trainer.save_checkpoint(path)
        clf = Classifier(mode="frozen", encoder_path=str(path)).eval()
        x = torch.rand(3, 1, 28, 28)
        code = module.eval().encode(x)
        code = code[0] if kind == "vae" else code  # the VAE's mean
        assert torch.equal(clf.features(x), code)


def test_clear_errors(exported, tmp_path):
    with pytest.raises(AeclsError, match="latent_dim 9 does not match the pretrained encoder's 6"):
        Classifier(NetConfig(latent_dim=9), mode="frozen", encoder_path=str(exported))
    with pytest.raises(AeclsError, match="encoder not found"):
        Classifier(mode="frozen", encoder_path=str(tmp_path / "nope.pt"))
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(AeclsError, match="not readable as an encoder export"):
        Classifier(mode="frozen", encoder_path=str(tmp_path / "junk.pt"))
    with pytest.raises(AeclsError, match="mode must be one of"):
        Classifier(mode="linear")
    with pytest.raises(AeclsError, match="onecycle"):
        Classifier(mode="finetune", encoder_path=str(exported), freeze_epochs=2,
                   optim=OptimConfig(scheduler="onecycle"))


def test_frozen_without_encoder_is_a_cli_error(tiny_data, capsys):
    code = fit(tiny_data, "classifier.yaml", "--model.init_args.mode", "frozen",
               "--trainer.fast_dev_run", "true")
    assert code == 2 and "needs a pretrained encoder" in capsys.readouterr().err


def test_cli_fit_frozen_and_test_writes_reports(exported, tiny_data, capsys):
    assert fit(tiny_data, "classifier.yaml", "--model.init_args.mode", "frozen",
               "--model.init_args.encoder_path", str(exported), "--model.init_args.net", "null",
               "--trainer.max_epochs", "2") == 0
    out = capsys.readouterr().out
    assert "test/acc" in out
    test_dir = next(Path("lightning_logs/classifier").glob("version_*/test"))
    assert "Ankle boot" in (test_dir / "report.txt").read_text()
    assert (test_dir / "confusion_matrix.png").stat().st_size > 5000
    rows = list(csv.DictReader(open(test_dir / "predictions.csv")))
    assert len(rows) == 100 and set(rows[0]) == {"index", "true", "predicted", "probability"}
