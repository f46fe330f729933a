"""Every registered model family, on synthetic data, through what a user does with it: the training
function (from its own config), a 1-trial study, a 1-cell transfer sweep where its encoder transfers,
and `aecls test` on its checkpoint. A new family is tested by being registered."""

from __future__ import annotations

import csv
from pathlib import Path

import optuna
import pytest
import yaml

from aecls.cli import main
from aecls.core.paths import find_config
from aecls.modules.registry import families, family
from aecls.training.train import load_train_config, train
from tests.helpers import finished, one_line_error

FAMILIES = sorted(families())
TINY_DATA = {"val_size": 50, "batch_size": 32}


def _tiny(name: str) -> dict:
    """Data settings that fit the tiny IDX files: a labelled subset only where the config has one."""
    cfg = load_train_config(find_config(family(name).config_name))
    return {**TINY_DATA, **({"n_labels": 20} if cfg.data.get("n_labels") else {})}


def _fit(name: str, tiny_data: Path):
    cfg = load_train_config(find_config(family(name).config_name), data_dir=str(tiny_data))
    cfg.data.update(_tiny(name))
    cfg.model["init_args"]["net"] = {**(cfg.model["init_args"].get("net") or {}), "n_channels": 4}
    if "nll_samples" in cfg.model["init_args"]:
        cfg.model["init_args"]["nll_samples"] = 2
    cfg.trainer.update(max_epochs=1, limit_train_batches=2, limit_val_batches=1)
    cfg.test = "best"
    return train(cfg)


def test_the_registry_is_whole():
    assert {"cae", "dae", "vae", "simclr", "classifier", "fixmatch"} <= set(FAMILIES)
    for name, f in families().items():
        assert f.name == name
        assert find_config(f.config_name).is_file()  # every family has its default config


@pytest.mark.parametrize(("changed", "message"), [
    ({"kind": "regressor"}, "kind must be one of"),
    ({"loss_keys": {"noise_sigma"}, "study_keys": {"loss"}},
     r"loss_keys \['noise_sigma'\] are not study keys"),
    ({"score": "val/loss", "maximize": True}, "val/loss is minimised"),
])
def test_a_family_breaking_a_rule_is_refused_at_construction(changed, message):
    """The registry's rules hold because Family refuses, when it is built, a family that breaks
    them (a kind it does not know, a loss key the study cannot search, a loss maximised)."""
    from aecls.modules.registry import Family

    cae = family("cae")
    fields = {"name": "broken", "module": cae.module, "kind": cae.kind, **changed}
    with pytest.raises(ValueError, match=message):
        Family(**fields)
    assert Family(**{**fields, **{k: getattr(cae, k) for k in changed}}).name == "broken"  # else fine


@pytest.mark.parametrize("name", FAMILIES)
def test_every_family_trains_studies_transfers_and_tests(name, tiny_data, capsys):
    f = family(name)
    run = _fit(name, tiny_data)  # the training function, from the family's own config
    assert type(run.module) is f.module and run.best_path and "test/loss" in run.test

    study = Path(f"{name}_study.yaml")
    # a one-epoch trial fits no longer schedule (a VAE config's KL warm-up: refused in a study)
    short = {key: 0 for key in run.module.schedule_epochs()}
    study.write_text(yaml.safe_dump({
        "model": name, "epochs": 1, "n_trials": 1, "data": _tiny(name), "pruner": "none",
        "space": {"n_channels": 4, "lr": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True},
                  **short}}))
    assert main(["study", "run", str(study), "--data-dir", str(tiny_data), "--no-progress"]) == 0
    (trial,) = finished(optuna.load_study(study_name=study.stem, storage="sqlite:///optuna.db"))
    assert trial.state.name == "COMPLETE" and trial.params.keys() == {"lr"}

    if f.has_encoder:  # one cell of a label sweep from its checkpoint
        assert main(["transfer", "sweep", "--encoder", run.best_path, "--labels", "20", "--seeds", "1",
                     "--methods", "frozen", "--epochs", "1", "--min-steps", "2", "--data-dir", str(tiny_data),
                     "--val-size", "50", "--out", "sw", "--no-progress"]) == 0
        (row,) = csv.DictReader(open("sw/sweep.csv"))
        assert row["method"] == "frozen" and 0 <= float(row["test_acc"]) <= 1

    capsys.readouterr()
    assert main(["test", "--ckpt", run.best_path, "--data-dir", str(tiny_data), "--no-baselines"]) == 0
    assert f"{f.module.__name__} {run.best_path}" in capsys.readouterr().out


def test_unknown_family_in_a_study_isone_line_error(capsys):
    Path("gan.yaml").write_text(yaml.safe_dump({"model": "gan", "space": {}}))
    assert main(["study", "run", "gan.yaml", "--no-progress"]) == 2
    err = one_line_error(capsys)
    assert "gan.yaml" in err and "'gan'" in err and all(n in err for n in FAMILIES)
    assert not Path("optuna.db").exists()


def test_a_study_key_the_family_does_not_declare_isone_line_error(capsys):
    Path("vae_keys.yaml").write_text(yaml.safe_dump({"model": "vae", "space": {"noise_sigma": 0.1}}))
    assert main(["study", "run", "vae_keys.yaml", "--no-progress"]) == 2
    err = one_line_error(capsys)
    assert "vae_keys.yaml" in err and "noise_sigma" in err and "model vae" in err and "beta" in err
    assert not Path("optuna.db").exists()


def test_unknown_family_in_a_fit_config_isone_line_error(capsys):
    cfg = yaml.safe_load(find_config("cae").read_text())
    cfg["model"]["class_path"] = "aecls.modules.GAN"
    Path("gan_fit.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["fit", "--config", "gan_fit.yaml"]) == 2
    err = one_line_error(capsys)
    assert "gan_fit.yaml" in err and "GAN" in err and "AutoEncoder" in err
    assert not Path("lightning_logs").exists()


def test_a_checkpoint_records_its_family_and_older_ones_are_matched(tmp_path):
    """Issue #38: the family a module was built as is stored in its checkpoint, so a second family
    of the same class is not claimed by the first one's predicate; a checkpoint without it (older)
    is still matched by class and hyper-parameters."""
    import torch

    from aecls.modules.encoders import load_encoder
    from aecls.modules.registry import FAMILY_KEY
    from aecls.nets import NetConfig
    from aecls.training.train import build_module
    from aecls.training.trainer import make_trainer

    net = NetConfig(latent_dim=4, n_channels=2, hidden=8)
    # built as dae, but with no noise: dae's predicate alone would call it cae
    module = build_module({"family": "dae", "init_args": {"net": net, "noise_sigma": 0.0}})
    trainer = make_trainer(1)
    trainer.strategy.connect(module)
    path = tmp_path / "m.ckpt"
    trainer.save_checkpoint(path)
    assert torch.load(path, weights_only=True)[FAMILY_KEY] == "dae"
    assert load_encoder(path)[2] == "dae"
    old = torch.load(path, weights_only=True)
    del old[FAMILY_KEY]
    torch.save(old, tmp_path / "old.ckpt")
    assert load_encoder(tmp_path / "old.ckpt")[2] == "cae"


def test_every_module_documents_each_init_argument():
    """LightningCLI's help (jsonargparse, through docstring-parser) reads an argument's text from
    its class docstring's Args: a docstring that does not parse, or sits below a class attribute
    (then it is no docstring at all), loses them all."""
    import inspect

    import docstring_parser

    for name, fam in families().items():
        doc = fam.module.__doc__
        assert doc, f"{name}: {fam.module.__name__} has no docstring"
        documented = {p.arg_name for p in docstring_parser.parse(doc).params}
        wanted = [a for a in inspect.signature(fam.module.__init__).parameters if a != "self"]
        assert not set(wanted) - documented, (name, sorted(set(wanted) - documented))
