"""The contrastive pretext: NT-Xent, the augmented views, and its encoder in the transfer stage."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from aecls.cli import main
from aecls.data.transforms import contrastive_view
from aecls.hpo.run import run_study
from aecls.hpo.space import load_study
from aecls.modules import SimCLR
from aecls.modules.contrastive import nt_xent
from aecls.modules.encoders import export_encoder, load_encoder
from aecls.nets import NetConfig
from tests.helpers import CONFIGS, checkpoints, finished, fit, write_study


def nt_xent_by_hand(z1: torch.Tensor, z2: torch.Tensor, t: float) -> float:
    """SimCLR's loss written out: for each of the 2B views, -log of its partner's share."""
    z = [F.normalize(v, dim=0) for v in torch.cat([z1, z2])]
    n, b = len(z), len(z1)
    total = 0.0
    for i in range(n):
        partner = (i + b) % n
        denom = sum(math.exp(float(z[i] @ z[k]) / t) for k in range(n) if k != i)
        total -= math.log(math.exp(float(z[i] @ z[partner]) / t) / denom)
    return total / n


def test_nt_xent_equals_the_direct_computation():
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(5, 7, generator=g), torch.randn(5, 7, generator=g)
    for t in (0.1, 0.5, 1.0):
        assert math.isclose(float(nt_xent(z1, z2, t)), nt_xent_by_hand(z1, z2, t), rel_tol=1e-5)
    # identical views of well-separated images: the loss is near its floor, far below random pairs
    eye = torch.eye(5) * 10
    assert float(nt_xent(eye, eye, 0.1)) < 0.01 < float(nt_xent(z1, z2, 0.1))


def test_views_differ_keep_shape_and_range_and_follow_the_seed():
    x = torch.rand(16, 1, 28, 28)
    v1 = contrastive_view(x, torch.Generator().manual_seed(3))
    v2 = contrastive_view(x, torch.Generator().manual_seed(4))
    again = contrastive_view(x, torch.Generator().manual_seed(3))
    assert v1.shape == x.shape and float(v1.min()) >= 0 and float(v1.max()) <= 1
    assert torch.equal(v1, again) and not torch.allclose(v1, v2) and not torch.allclose(v1, x)


def test_contrastive_encoder_exports_and_loads_into_the_classifier(tiny_data, tmp_path, capsys):
    assert fit(tiny_data, "simclr.yaml", "--trainer.max_epochs", "1", "--data.batch_size", "64",
               "--model.init_args.net.latent_dim", "16", "--test_after_fit", "false") == 0
    (ckpt,) = checkpoints()
    encoder, net, kind = load_encoder(ckpt)  # straight from the checkpoint ...
    assert kind == "simclr" and net.latent_dim == 16
    module = SimCLR(net=NetConfig(**{**net.__dict__}))
    path = export_encoder(tmp_path / "best_encoder.pt", encoder, net, "simclr")  # ... or exported
    again, _, kind = load_encoder(path)
    x = torch.rand(3, 1, 28, 28)
    assert kind == "simclr" and torch.equal(encoder.eval()(x), again.eval()(x))
    assert module.encode(x).shape == (3, 16)
    for source in (str(ckpt), str(path)):
        assert main(["fit", "--config", str(CONFIGS / "classifier.yaml"), "--data.data_dir", str(tiny_data),
                     "--data.val_size", "50", "--model.init_args.mode", "frozen", "--model.init_args.net",
                     "null", "--model.init_args.encoder_path", source, "--trainer.max_epochs", "1",
                     "--trainer.enable_progress_bar", "false"]) == 0
        assert "test/acc" in capsys.readouterr().out


@pytest.mark.slow
def test_a_contrastive_study_scored_by_the_probe(tiny_data):
    spec = load_study(write_study("simclr", model="simclr", objective="probe", epochs=1,
                                  data={"val_size": 50, "batch_size": 64},
                                  space={"latent_dim": 8, "n_channels": 4,
                                         "temperature": {"type": "float", "low": 0.1, "high": 0.5}}))
    assert spec.defaults["net"]["latent_dim"] == 128  # from configs/simclr.yaml, overridden by the space
    study = run_study(spec, 2, "sqlite:///s.db", data_dir=str(tiny_data), progress=False)
    assert len(finished(study)) == 2 and all(0 < t.value <= 1 for t in finished(study))
    assert Path(study.trials[0].user_attrs["checkpoint"]).is_file()
