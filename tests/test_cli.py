"""`aecls fit` / `aecls test` end to end on tiny IDX files."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from aecls.cli import main
from aecls.core.paths import FIT_LAST_GLOB
from tests.helpers import CONFIGS, checkpoints, fit

REPO = Path(__file__).resolve().parents[1]
NEEDS_ENCODER = {"cnn_finetune.yaml"}  # checked by the test after this one
FEWER_LABELS = {"fixmatch.yaml": ["--data.n_labels", "20"]}  # the tiny files have 350 training images


@pytest.mark.parametrize("config", sorted({p.name for p in CONFIGS.glob("*.yaml")} - NEEDS_ENCODER))
def test_fast_dev_run_every_config(tiny_data, config):
    assert fit(tiny_data, config, "--trainer.fast_dev_run", "true", *FEWER_LABELS.get(config, [])) == 0


def test_cnn_pretrain_then_finetune_configs(tiny_data, capsys):
    assert fit(tiny_data, "cnn_finetune.yaml", "--trainer.fast_dev_run", "true") == 2
    assert "needs a pretrained encoder" in capsys.readouterr().err
    assert fit(tiny_data, "cnn_ae.yaml", "--trainer.max_epochs", "1", "--test_after_fit", "false") == 0
    (ae_ckpt,) = Path("lightning_logs/cnn_ae").glob("version_0/checkpoints/best-*.ckpt")
    assert fit(tiny_data, "cnn_finetune.yaml", "--trainer.max_epochs", "1",  # TINY's net must agree:
               "--model.init_args.net.latent_dim", "256", "--model.init_args.encoder_path", str(ae_ckpt)) == 0
    assert "test/acc" in capsys.readouterr().out
    (ckpt,) = Path("lightning_logs/cnn_finetune").glob("version_0/checkpoints/best-*.ckpt")
    hp = torch.load(ckpt, map_location="cpu", weights_only=True)["hyper_parameters"]
    assert hp["mode"] == "finetune" and hp["net"]["arch"] == "cnn" and hp["encoder_source"] == "dae"


def test_fit_then_test_checkpoint(tiny_data, capsys):
    assert fit(tiny_data, "cae.yaml", "--trainer.max_epochs", "2") == 0
    out = capsys.readouterr().out
    (best,) = checkpoints()
    assert f"best checkpoint: {best}" in out
    assert main(["test", "--ckpt", str(best), "--accelerator", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "AutoEncoder" in out and "test/mse" in out and "test/psnr" in out and "baseline/pca14_mse" in out
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator("lightning_logs/cae/version_0").Reload()
    assert "val/images" in events.Tags()["images"]  # reconstruction grid each validation epoch
    assert {"train/loss", "val/loss", "hp_metric"} <= set(events.Tags()["scalars"])
    # issue #40, 6: each epoch's grid at the step of that epoch's val/* scalars
    scalar_steps = [e.step for e in events.Scalars("val/loss")]
    assert [e.step for e in events.Images("val/images")] == scalar_steps and len(scalar_steps) == 2


def test_same_seed_same_weights(tiny_data):
    for _ in range(2):
        assert fit(tiny_data, "cae.yaml", "--trainer.max_epochs", "1", "--test_after_fit", "false") == 0
    a, b = (torch.load(p, weights_only=True)["state_dict"] for p in checkpoints(FIT_LAST_GLOB))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_from_last(tiny_data, capsys):
    # Stand-in for an interrupted run: stop after 1 of 2 epochs. (OneCycle's step count is fixed
    # at the start, so this test uses the cosine schedule, which may be stretched on resume.)
    args = ["--test_after_fit", "false", "--model.init_args.optim.scheduler", "cosine"]
    assert fit(tiny_data, "cae.yaml", "--trainer.max_epochs", "1", *args) == 0
    first = torch.load(checkpoints(FIT_LAST_GLOB)[0], weights_only=True)["global_step"]
    assert fit(tiny_data, "cae.yaml", "--trainer.max_epochs", "2", "--ckpt_path", "last", *args) == 0
    assert "resuming lightning_logs/cae/version_0/checkpoints/last.ckpt" in capsys.readouterr().out
    (last,) = checkpoints(FIT_LAST_GLOB)  # continued in version_0, no new run
    assert torch.load(last, weights_only=True)["global_step"] == 2 * first


def test_resume_without_a_run_is_a_clear_error(tiny_data, capsys):
    assert fit(tiny_data, "cae.yaml", "--ckpt_path", "last") == 2
    assert "no last.ckpt" in capsys.readouterr().err


@pytest.mark.parametrize(("args", "message"), [
    (["--model.init_args.optim.lr", "-0.1"], "optim.lr must be > 0"),
    (["--model.init_args.net.latent_dim", "0"], "net.latent_dim must be >= 1"),
    (["--model.init_args.optim.name", "adagrad"], "optim.name must be one of"),
    (["--data.data_dir", "/nonexistent/dir"], "IDX files not found"),
])
def test_bad_values_exit_2_with_one_line(tiny_data, capsys, args, message):
    assert fit(tiny_data, "cae.yaml", "--trainer.fast_dev_run", "true", *args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("aecls: error:") and message in err[-1]
    assert not any("Traceback" in line for line in err)


def test_test_with_bad_checkpoint(tmp_path, capsys):
    assert main(["test", "--ckpt", str(tmp_path / "missing.ckpt")]) == 2
    (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint")
    assert main(["test", "--ckpt", str(tmp_path / "junk.ckpt")]) == 2
    assert "not a readable aecls checkpoint" in capsys.readouterr().err


def test_help_lists_options(capsys):
    with pytest.raises(SystemExit) as info:
        main(["fit", "--help"])
    assert info.value.code == 0
    assert "--trainer.max_epochs" in capsys.readouterr().out


def test_test_prints_baselines(tiny_data, capsys):
    assert fit(tiny_data, "vae.yaml", "--trainer.max_epochs", "1", "--test_after_fit", "false",
               "--model.init_args.nll_samples", "3") == 0
    (best,) = checkpoints()
    assert main(["test", "--ckpt", str(best)]) == 0
    out = capsys.readouterr().out
    assert "test/nll" in out and "test/elbo" in out and "baseline/independent_pixel_nll" in out


def test_the_docs_spell_aecls_test_s_flag_as_its_help_does():
    import re

    from aecls.cli.main import _parser

    test = _parser()._subparsers._group_actions[0].choices["test"]
    flag = next(a for a in test._actions if a.dest == "ckpt").option_strings[0]
    assert flag == "--ckpt"
    for doc in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        for line in re.findall(r"aecls test [^\n`]*", doc.read_text()):
            assert "--ckpt_path" not in line, f"{doc.name}: {line}"


def test_outside_a_terminal_progress_is_a_line_per_step_not_bar_frames(tiny_data, capsys):
    """Issue #40, 10: a log (here pytest's captured output, not a terminal) gets a line per epoch,
    trial and run, and no bar frame (a carriage return)."""
    from tests.helpers import TINY, write_study

    assert main(["fit", "--config", str(CONFIGS / "cae.yaml"), "--data.data_dir", str(tiny_data), *TINY,
                 "--trainer.max_epochs", "2", "--trainer.enable_model_summary", "false"]) == 0
    out, err = capsys.readouterr()
    assert "\r" not in out + err
    lines = [line for line in out.splitlines() if line.startswith("epoch ")]
    assert [line.split(":")[0] for line in lines] == ["epoch 1 of 2", "epoch 2 of 2"]
    assert "val/loss" in lines[0] and "test/mse" in out  # the test after the fit, without a bar
    path = str(write_study("logged", epochs=1))
    assert main(["study", "run", path, "--n-trials", "2", "--data-dir", str(tiny_data)]) == 0
    out, err = capsys.readouterr()
    assert "\r" not in out + err
    assert "study logged: 1/2 trials" in err and "study logged: 2/2 trials" in err
    (best,) = checkpoints()
    assert main(["transfer", "sweep", "--encoder", str(best), "--labels", "20", "--seeds", "1",
                 "--methods", "logreg_pca", "--data-dir", str(tiny_data), "--val-size", "50",
                 "--out", "sw"]) == 0
    out, err = capsys.readouterr()
    assert "\r" not in out + err and "run 1/1: 20 labels, seed 0, logreg_pca" in out
