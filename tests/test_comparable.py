"""A study ranks its trials by one number that means the same for every value its space can draw
(Family.score), never by a training loss that a searched key changes; schedules longer than a
trial are refused. Tiny synthetic data: a few seconds each."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from aecls.core.errors import AeclsError
from aecls.hpo.run import run_study
from aecls.hpo.space import load_study
from aecls.modules import AutoEncoder
from aecls.modules.registry import families
from tests.helpers import finished, write_study

TINY = {"val_size": 50, "batch_size": 64}
LR = {"type": "float", "low": 1e-3, "high": 1e-2, "log": True}


def _complete(study):
    return [t for t in finished(study) if t.state.name == "COMPLETE"]


def test_every_family_whose_loss_a_key_changes_declares_another_score():
    """A family with loss keys (its val/loss changes with a searched key) must rank its studies by
    another number, its score; a study of such a family that compares val/loss itself while
    searching one is refused (below)."""
    for f in families().values():
        assert not f.loss_keys or f.score != "val/loss", f.name
    changed = {f.name for f in families().values() if f.loss_keys}
    assert {"dae", "vae"} <= changed  # the DAE's noise and loss, the VAE's beta


def test_a_vae_beta_study_ranks_by_the_elbo_not_the_beta_weighted_loss(tiny_data):
    spec = load_study(write_study("beta", model="vae", epochs=1, pruner="none", data=TINY,
                                  space={"n_channels": 4, "kl_warmup_epochs": 0, "lr": 3e-3,
                                         "beta": {"type": "categorical", "choices": [0.1, 4.0]}}))
    assert spec.metrics == ("val/elbo",) and spec.directions == ["maximize"]
    study = run_study(spec, 4, "sqlite:///b.db", data_dir=str(tiny_data), progress=False)
    trials = _complete(study)
    assert {t.params["beta"] for t in trials} == {0.1, 4.0}
    for t in trials:  # each trial's value is its best epoch's ELBO
        assert t.value == max(t.user_attrs["history"]["val/elbo"])
    assert study.best_trial.value == max(t.value for t in trials)


def test_a_loss_choice_study_ranks_by_clean_mse(tiny_data):
    spec = load_study(write_study("loss", epochs=1, pruner="none", data=TINY,
                                  space={"n_channels": 4, "latent_dim": 4, "lr": LR,
                                         "loss": {"type": "categorical", "choices": ["mse", "bce"]}}))
    assert spec.metrics == ("val/clean_mse",)
    study = run_study(spec, 4, "sqlite:///l.db", data_dir=str(tiny_data), progress=False)
    trials = _complete(study)
    assert {t.params["loss"] for t in trials} == {"mse", "bce"}
    for t in trials:  # an MSE whatever the loss: a BCE trial's value is no cross-entropy
        assert t.value == min(t.user_attrs["history"]["val/clean_mse"]) < 0.25
    assert study.best_trial.value == min(t.value for t in trials)


def test_a_dae_is_scored_on_clean_images_whatever_its_noise():
    torch.manual_seed(0)
    x = torch.rand(16, 1, 28, 28)
    low = AutoEncoder({"latent_dim": 4, "n_channels": 4}, noise_sigma=0.1)
    high = AutoEncoder({"latent_dim": 4, "n_channels": 4}, noise_sigma=0.8)
    high.load_state_dict(low.state_dict())
    low.eval(), high.eval()
    with torch.no_grad():
        a, b = low.compute((x, None), "val"), high.compute((x, None), "val")
        clean = F.mse_loss(low(x), x)
    assert torch.equal(a["clean_mse"], clean) and torch.equal(b["clean_mse"], clean)
    assert a["mse"] != b["mse"]  # the noisy-input MSE changes with the noise


def test_a_noise_study_compares_clean_mse(tiny_data):
    spec = load_study(write_study("noise", model="dae", epochs=1, pruner="none", data=TINY,
                                  space={"n_channels": 4, "latent_dim": 4, "lr": 3e-3,
                                         "noise_sigma": {"type": "float", "low": 0.0, "high": 0.8}}))
    assert spec.metrics == ("val/clean_mse",)
    study = run_study(spec, 2, "sqlite:///n.db", data_dir=str(tiny_data), progress=False)
    for t in _complete(study):
        assert math.isfinite(t.value) and t.value == min(t.user_attrs["history"]["val/clean_mse"])


@pytest.mark.parametrize(("model", "space", "objective", "words"), [
    ("vae", {"beta": {"type": "float", "low": 0.1, "high": 4.0}}, "loss",
     ["search-space entry beta changes val/loss", "objective recon", "val/elbo"]),
    ("cae", {"loss": {"type": "categorical", "choices": ["mse", "bce"]}}, "loss",
     ["search-space entry loss changes val/loss", "val/clean_mse"]),
    ("dae", {"noise_sigma": {"type": "float", "low": 0.1, "high": 0.5}}, "loss",
     ["noise_sigma changes val/loss"]),
    ("simclr", {"temperature": {"type": "float", "low": 0.1, "high": 0.5}}, "multi",
     ["temperature changes val/loss", "objective probe"]),
])
def test_a_study_of_a_loss_its_space_changes_is_refused(model, space, objective, words):
    extra = {"pruner": "none"} if objective == "multi" else {}
    with pytest.raises(AeclsError) as e:
        load_study(write_study("mixed", model=model, objective=objective, space=space, **extra))
    assert "mixed.yaml" in str(e.value) and all(w in str(e.value) for w in words), str(e.value)


def test_a_fixed_loss_key_with_objective_loss_is_fine():
    spec = load_study(write_study("fixed", model="vae", objective="loss",
                                  space={"beta": 2.0, "kl_warmup_epochs": 0}))
    assert spec.metrics == ("val/loss",)


@pytest.mark.parametrize(("space", "words"), [
    ({}, ["vae.yaml: kl_warmup_epochs 5 needs 5 epochs", "epochs 2", "at most 2"]),
    ({"kl_warmup_epochs": {"type": "int", "low": 0, "high": 3}},
     ["search-space entry kl_warmup_epochs=3", "needs 3 epochs"]),
    ({"kl_warmup_epochs": 4}, ["the space: kl_warmup_epochs 4"]),
])
def test_a_warmup_longer_than_a_trial_is_refused(space, words):
    with pytest.raises(AeclsError) as e:
        load_study(write_study("warm", model="vae", epochs=2, space=space))
    assert all(w in str(e.value) for w in words), str(e.value)


def test_a_frozen_start_longer_than_a_trial_is_refused():
    with pytest.raises(AeclsError, match="freeze_epochs 2 needs 3 epochs"):
        load_study(write_study("ft", model="classifier", epochs=2,
                               space={"mode": "finetune", "freeze_epochs": 2, "scheduler": "cosine"}))


def test_a_study_created_comparing_another_metric_is_not_continued(tiny_data):
    import optuna

    spec = load_study(write_study("old", epochs=1, pruner="none", data=TINY))
    # as aecls's `recon` objective created it before families declared their score
    old = optuna.create_study(study_name="old", storage="sqlite:///o.db")
    old.set_metric_names(["val/loss"])
    old.optimize(lambda t: 0.1, n_trials=1)
    with pytest.raises(AeclsError, match=r"ranks its trials by \['val/loss'\]"):
        run_study(spec, 2, "sqlite:///o.db", data_dir=str(tiny_data), progress=False)


def test_study_best_labels_the_compared_metric_and_a_loss_the_space_changed():
    from aecls.hpo.record import BestRecord

    stat = {"mean": 1.0, "std": 0.0}  # as a best.json written before the sample sd
    info = BestRecord(study="v", trial=0, params={}, epochs=1, seeds=[0], encoder={}, monitor="val/elbo",
                      loss_varies_with=["beta"],
                      test={"test/kl": stat, "test/loss": stat, "test/elbo": stat, "test/nll": stat})
    rows = info.test_rows()
    assert rows[0][0] == "test/elbo" and "compared" in rows[0][2]
    (loss,) = [note for name, _, note in rows if name == "test/loss"]
    assert "training loss" in loss and "beta" in loss and "test/elbo" in loss
    assert all(note == "" for name, _, note in rows if name in ("test/kl", "test/nll"))
