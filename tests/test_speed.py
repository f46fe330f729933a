"""Speed options (aecls.modules.speed): channels_last, the fused optimiser and bf16 train the same thing,
reach every way of training (aecls fit, a study's `trainer:`, make_trainer), and their checkpoints
load and test like any other. (How much faster: scripts/bench_fit.py and BENCHMARKS.md.)"""

from __future__ import annotations

import json

import lightning as L
import pytest
import torch

from aecls.cli import main
from aecls.core.errors import AeclsError
from aecls.hpo.run import visible_gpus, worker_plan
from aecls.hpo.space import load_study
from aecls.modules import AutoEncoder, Classifier, OptimConfig
from aecls.modules.speed import Speed, speed_of
from aecls.nets import NetConfig
from aecls.training.checkpoints import init_args
from aecls.training.trainer import make_trainer
from tests.helpers import checkpoints, fit, write_study

NET = NetConfig(latent_dim=8, n_channels=4, hidden=16, batch_norm=True)


def _steps(net: NetConfig, channels_last: bool, fused: bool, n: int = 4):
    """n Adam steps of a CAE on fixed batches: (losses, first step's gradients, final parameters)."""
    torch.manual_seed(0)
    model = AutoEncoder(net)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2, fused=fused)
    g = torch.Generator().manual_seed(1)
    losses, grads = [], {}
    for _ in range(n):
        x = torch.rand(16, 1, 28, 28, generator=g)
        opt.zero_grad()
        loss = model.compute((x, None), "train")["loss"]
        loss.backward()
        grads = grads or {k: p.grad.clone() for k, p in model.named_parameters()}
        opt.step()
        losses.append(loss.item())
    return losses, grads, {k: v.detach().contiguous() for k, v in model.state_dict().items()}


@pytest.mark.parametrize(("channels_last", "fused"), [(True, False), (False, True), (True, True)])
def test_speed_paths_compute_the_eager_step(channels_last, fused):
    for net in (NET, NetConfig(latent_dim=8, n_channels=4, hidden=16)):
        ref_losses, ref_grads, ref = _steps(net, False, False)
        losses, grads, params = _steps(net, channels_last, fused)
        assert losses == pytest.approx(ref_losses, rel=1e-4)
        for k in ref_grads:
            assert torch.allclose(grads[k], ref_grads[k], rtol=1e-3, atol=1e-6), k
        if not net.batch_norm:
            # A conv bias ahead of BatchNorm has a zero true gradient, so Adam turns its rounding
            # noise into lr-sized steps; without BatchNorm every parameter must agree.
            for k in ref:
                assert torch.allclose(params[k], ref[k], rtol=1e-3, atol=1e-5), k


class _Layout(L.Callback):
    """Records the memory format of a conv weight (one with several input channels, so the two
    layouts differ) and the optimiser's `fused` flag as training sees them."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        w = next(p for p in pl_module.parameters() if p.ndim == 4 and p.shape[1] > 1)
        self.channels_last = w.is_contiguous(memory_format=torch.channels_last) and not w.is_contiguous()
        self.fused = trainer.optimizers[0].defaults.get("fused")


@pytest.mark.parametrize(("setting", "expect"), [("auto", True), ("true", True), ("false", False)])
def test_make_trainer_applies_channels_last(tiny_data, setting, expect):
    from aecls.data import FashionMNISTDataModule

    layout = _Layout()
    trainer = make_trainer(1, limit_train_batches=2, limit_val_batches=1, callbacks=[layout],
                           channels_last=setting, accelerator="cpu")
    dm = FashionMNISTDataModule(str(tiny_data), val_size=50, batch_size=32)
    trainer.fit(AutoEncoder(NET), datamodule=dm)
    assert layout.channels_last is expect and layout.fused is True


def test_auto_means_cpu_only_and_fused_where_torch_has_it():
    assert Speed().channels_last_on(torch.device("cpu"))
    assert not Speed().channels_last_on(torch.device("cuda", 0))  # not measured faster there yet
    assert Speed(channels_last=True).channels_last_on(torch.device("cuda", 0))
    params = list(torch.nn.Linear(2, 2).parameters())
    trainer = make_trainer(1, fused_optimizer="false")
    assert speed_of(trainer).fused_optimizer == "false"
    assert not speed_of(trainer).fused_on() and speed_of(None).fused_on()  # no Speed: the defaults
    assert not OptimConfig("adam").build(params, trainer)["optimizer"].defaults["fused"]
    for name, fused in (("adam", True), ("adamw", True), ("sgd", True), ("rmsprop", None)):
        opt = OptimConfig(name).build(params, None, fused=True)["optimizer"]
        assert opt.defaults.get("fused") is fused, name
    with pytest.raises(AeclsError, match=r"channels_last must be one of \[.auto., .true., .false.\], got"):
        Speed(channels_last="yes")


@pytest.mark.parametrize("option", [["--speed.channels_last", "true"], ["--speed.fused_optimizer", "false"],
                                    ["--trainer.precision", "bf16-mixed"]])
def test_fit_options_train_and_their_checkpoints_load_and_test(tiny_data, capsys, option):
    assert fit(tiny_data, "cae.yaml", "--trainer.max_epochs", "1", "--test_after_fit", "false", *option) == 0
    (best,) = checkpoints()
    state = torch.load(best, map_location="cpu", weights_only=True)["state_dict"]
    hparams = torch.load(best, map_location="cpu", weights_only=True)["hyper_parameters"]
    fresh = AutoEncoder(**init_args(AutoEncoder, hparams))  # `_class_path` is LightningCLI's record
    fresh.load_state_dict(state)  # a channels_last checkpoint loads into an NCHW module
    assert main(["test", "--ckpt", str(best), "--accelerator", "cpu"]) == 0
    assert "test/mse" in capsys.readouterr().out


def test_fit_rejects_a_bad_speed_value(tiny_data, capsys):
    assert fit(tiny_data, "cae.yaml", "--trainer.max_epochs", "1", "--speed.channels_last", "sometimes") == 2
    err = capsys.readouterr().err.strip()
    assert "channels_last must be one of" in err and "'sometimes'" in err


def test_classifier_trains_channels_last(tiny_data):
    from aecls.data import FashionMNISTDataModule

    layout = _Layout()
    model = Classifier(net=NetConfig(arch="cnn", latent_dim=8, n_channels=4), mode="scratch")
    make_trainer(1, limit_train_batches=2, limit_val_batches=0, callbacks=[layout], channels_last="true",
                 accelerator="cpu").fit(model, datamodule=FashionMNISTDataModule(str(tiny_data), val_size=50,
                                                                                   batch_size=32))
    assert layout.channels_last


def test_study_trainer_key_takes_the_speed_options():
    spec = load_study(write_study("fast", trainer={"channels_last": False, "fused_optimizer": "auto"}))
    assert spec.trainer["channels_last"] == "false" and spec.trainer["fused_optimizer"] == "auto"
    trainer = make_trainer(1, **spec.trainer)  # what a trial and `study best` build
    assert speed_of(trainer).channels_last == "false"
    with pytest.raises(AeclsError, match=r"study slow: trainer\.channels_last must be one of"):
        load_study(write_study("slow", trainer={"channels_last": "maybe"}))


def test_workers_beyond_the_gpus_share_them(monkeypatch):
    """`--workers 4` on a host with one (fake) GPU: every worker sees that GPU, and the host's
    cores are split between them."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    gpus = visible_gpus()
    plans = [worker_plan(slot, 4, gpus, cpus=16) for slot in range(4)]
    assert [p.env["CUDA_VISIBLE_DEVICES"] for p in plans] == ["0"] * 4
    assert [p.threads for p in plans] == [4] * 4


def test_steps_per_call_is_gone(tiny_data):
    """Removed (issue #26): several optimiser steps per call measured 1.03x the default's trials/min
    on the quickstart study (BENCHMARKS.md), under the 1.1x it had to show to stay."""
    with pytest.raises(AeclsError, match=r"unknown trainer keys \['steps_per_call'\]"):
        load_study(write_study("grp", trainer={"steps_per_call": 4}))


def test_epoch_times_callback_prints_each_epochs_seconds(tiny_data, capsys):
    """docs/speed.md's `--trainer.callbacks+=aecls.modules.speed.EpochTimes` (the benchmarks time
    with it too)."""
    assert fit(tiny_data, "cae.yaml", "--trainer.max_epochs", "2", "--trainer.limit_train_batches", "2",
               "--test_after_fit", "false", "--trainer.callbacks+=aecls.modules.speed.EpochTimes") == 0
    (line,) = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("epoch seconds: ")]
    seconds = json.loads(line.removeprefix("epoch seconds: "))  # a list of floats, as printed
    assert len(seconds) == 2 and all(s > 0 for s in seconds)
