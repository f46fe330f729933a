"""Every model through the same checks (timm style): shapes, gradients, overfitting, checkpoints."""

from __future__ import annotations

import pytest
import torch

from aecls.core.errors import AeclsError
from aecls.modules import VAE, AutoEncoder, OptimConfig
from aecls.modules.vae import kl_to_standard_normal
from aecls.nets import NetConfig
from aecls.training.checkpoints import load_module
from tests.conftest import synthetic_images

CONV = NetConfig(latent_dim=8, n_channels=4, hidden=32)
MODELS = {
    "cae": lambda: AutoEncoder(CONV),
    "cae_bn_bce": lambda: AutoEncoder(NetConfig(latent_dim=8, n_channels=4, batch_norm=True), loss="bce"),
    "dae": lambda: AutoEncoder(CONV, noise_sigma=0.3),
    "mlp_ae": lambda: AutoEncoder(NetConfig(arch="mlp", latent_dim=8, mlp_widths=[64, 16])),
    "cnn_ae": lambda: AutoEncoder(NetConfig(arch="cnn", latent_dim=8, n_channels=4)),
    "vae": lambda: VAE(CONV, nll_samples=4),
}


def _batch(n=16, binary=False, seed=0):
    """n synthetic images (class bars + noise, as in the tiny IDX files), optionally binarised."""
    y = torch.arange(n) % 10
    x = torch.from_numpy(synthetic_images(y.numpy(), seed)).float().div(255).unsqueeze(1)
    return ((x > 0.5).float() if binary else x), y


@pytest.mark.parametrize("name", MODELS)
def test_shapes(name):
    model = MODELS[name]().eval()
    x, _ = _batch(5)
    assert model(x).shape == (5, 1, 28, 28)
    assert 0 <= model(x).min() and model(x).max() <= 1
    z = model.encode(x)
    z = z[0] if isinstance(z, tuple) else z
    assert z.shape == (5, 8)
    rows = len(model.image_rows(x))  # inputs, reconstructions (+ noisy inputs, samples, ...)
    assert rows >= 2
    assert model.image_grid(x).shape == (3, 2 + 30 * rows, 2 + 30 * len(x))  # 28 px + 2 padding a cell


@pytest.mark.parametrize("name", MODELS)
def test_every_parameter_gets_a_gradient(name):
    torch.manual_seed(0)
    model = MODELS[name]()
    x = torch.rand(16, 1, 28, 28)  # varied inputs, so no ReLU unit is dead for the whole batch
    model.compute((x, None), "train")["loss"].backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, pname


@pytest.mark.parametrize("name", MODELS)
def test_overfits_one_batch(name):
    torch.manual_seed(0)
    model = MODELS[name]()
    batch = _batch(8, binary=True)  # binary pixels: the likelihood's floor is 0 for every model
    # The narrow MLP collapses to the mean image at 3e-3 (dead ReLUs); conv nets are slow at 1e-3.
    opt = torch.optim.Adam(model.parameters(), lr=1e-3 if name == "mlp_ae" else 3e-3)
    first = model.compute(batch, "train")["loss"].item()
    for _ in range(500):
        opt.zero_grad()
        loss = model.compute(batch, "train")["loss"]
        loss.backward()
        opt.step()
    assert loss.item() < first / 10, (first, loss.item())


@pytest.mark.parametrize("name", MODELS)
def test_checkpoint_round_trip(name, tmp_path):
    from aecls.training.trainer import make_trainer

    model = MODELS[name]()
    trainer = make_trainer(1)
    trainer.strategy.connect(model)
    path = tmp_path / "m.ckpt"
    trainer.save_checkpoint(path)
    loaded, _ = load_module(path)  # weights_only=True inside
    x, _ = _batch(4)
    model.eval()
    assert type(loaded) is type(model)
    assert torch.equal(loaded(x), model(x))


def test_vae_kl():
    mu, logvar = torch.zeros(3, 5), torch.zeros(3, 5)
    assert torch.equal(kl_to_standard_normal(mu, logvar), torch.zeros(3))
    mu, logvar = torch.randn(100, 5), torch.randn(100, 5)
    assert (kl_to_standard_normal(mu, logvar) >= 0).all()


def test_vae_nll_bound_is_below_negative_elbo_on_average():
    torch.manual_seed(0)
    model = VAE(CONV, nll_samples=50).eval()
    x, _ = _batch(8, binary=True)
    with torch.no_grad():
        m = model.compute((x, None), "test")
    assert m["nll"] <= -m["elbo"] + 1.0  # IWAE is a tighter bound (noise of one ELBO sample aside)
    assert model.sample(3).shape == (3, 1, 28, 28)


@pytest.mark.parametrize(("make", "message"), [
    (lambda: AutoEncoder(optim=OptimConfig(lr=-1.0)), "optim.lr must be > 0"),
    (lambda: AutoEncoder(NetConfig(latent_dim=0)), "net.latent_dim must be >= 1"),
    (lambda: AutoEncoder(optim=OptimConfig(name="adagrad")), "optim.name must be one of"),
    (lambda: AutoEncoder(optim=OptimConfig(scheduler="step")), "optim.scheduler must be one of"),
    (lambda: AutoEncoder(NetConfig(arch="rnn")), "net.arch must be"),
    (lambda: AutoEncoder(loss="l1"), "loss must be"),
    (lambda: AutoEncoder(noise_sigma=-0.1), "noise_sigma must be >= 0"),
    (lambda: VAE(beta=-1.0), "beta must be >= 0"),
    (lambda: VAE(NetConfig(arch="cnn")), "ends in a ReLU"),
])
def test_bad_config_values(make, message):
    with pytest.raises(AeclsError, match=message):
        make()


@pytest.mark.parametrize("name", ["adam", "adamw", "sgd", "rmsprop"])
@pytest.mark.parametrize("scheduler", ["none", "cosine", "cosine_steps", "plateau", "onecycle"])
def test_optimisers_and_schedulers_build(name, scheduler):
    class FakeTrainer:
        estimated_stepping_batches, max_epochs = 10, 2

    conf = OptimConfig(name=name, scheduler=scheduler).build(torch.nn.Linear(2, 2).parameters(),
                                                             FakeTrainer())
    assert conf["optimizer"].param_groups[0]["lr"] > 0
    assert ("lr_scheduler" in conf) == (scheduler != "none")


@pytest.mark.parametrize("name", ["cae", "vae"])
def test_train_metrics_are_the_batch_weighted_epoch_means(name, tiny_data):
    """Training metrics are summed by the module and logged once an epoch (a speed measure):
    they must equal the mean of the step losses, weighted by batch size (the last batch is short)."""
    import lightning as L

    from aecls.data import FashionMNISTDataModule
    from aecls.training.trainer import make_trainer

    class Steps(L.Callback):
        def __init__(self) -> None:
            self.seen: list[tuple[float, int]] = []

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            self.seen.append((float(outputs["loss"]), len(batch[0])))

    steps = Steps()
    model = MODELS[name]()
    dm = FashionMNISTDataModule(data_dir=str(tiny_data), batch_size=64, val_size=50)
    trainer = make_trainer(1, callbacks=[steps], limit_val_batches=0)
    trainer.fit(model, datamodule=dm)
    total = sum(n for _, n in steps.seen)
    assert total == 350 and len(steps.seen) == 6
    expected = sum(loss * n for loss, n in steps.seen) / total
    assert float(trainer.callback_metrics["train/loss"]) == pytest.approx(expected, rel=1e-5)
