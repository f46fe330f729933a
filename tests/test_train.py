"""The one training function: `aecls fit` and a library call of `train` on the same config train the
same weights; a bad config is one user error; Ctrl-C in a fit is one line and exit 130."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from aecls.core.errors import AeclsError
from aecls.training.train import TrainConfig, load_train_config, train
from tests.helpers import CONFIGS, checkpoints, fit, interruptible


def _state(path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


def test_the_cli_and_the_library_train_the_same_weights(tiny_data, monkeypatch):
    assert fit(tiny_data, "cae.yaml", "--trainer.max_epochs", "2", "--test_after_fit", "false") == 0
    (cli_ckpt,) = checkpoints()
    cfg = load_train_config(CONFIGS / "cae.yaml", data_dir=str(tiny_data), log_dir="library")
    cfg.data.update(val_size=50, batch_size=32)
    cfg.model["init_args"]["net"]["n_channels"] = 4
    cfg.trainer["max_epochs"] = 2
    cfg.quiet, cfg.test = False, "best"  # sanity-check steps as the CLI's Trainer runs them
    run = train(cfg)
    assert Path(run.best_path).name == cli_ckpt.name and "test/mse" in run.test
    a, b = _state(cli_ckpt), _state(run.best_path)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_bad_configs_are_user_errors(tiny_data):
    with pytest.raises(AeclsError, match="unknown model family 'gan'; known: cae, dae"):
        train(TrainConfig(model={"family": "gan"}))
    with pytest.raises(AeclsError, match=r"model: vae: .*unexpected keyword argument 'noise_sigma'"):
        train(TrainConfig(model={"family": "vae", "init_args": {"noise_sigma": 0.1}}))
    with pytest.raises(AeclsError, match="test must be one of"):
        train(TrainConfig(model={"family": "cae"}, test="all"))
    Path("x.yaml").write_text("model: {class_path: aecls.modules.AutoEncoder}\nmodle: {}\n")
    with pytest.raises(AeclsError, match=r"x.yaml: unknown key\(s\) \['modle'\]"):
        load_train_config("x.yaml")


@pytest.mark.slow
def test_ctrl_c_in_a_fit_is_one_line_and_exit_130(tiny_data):
    cmd = [sys.executable, "-m", "aecls.cli", "fit", "--config", str(CONFIGS / "cae.yaml"),
           "--data.data_dir", str(tiny_data), "--data.val_size", "50", "--trainer.max_epochs", "5000",
           "--trainer.enable_progress_bar", "false"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    # Output to files, not pipes: nothing reads a pipe while the test waits, and a full one would
    # block the process in a write, where no signal is handled.
    out, errf = open("stop.out", "w+"), open("stop.err", "w+")
    proc = subprocess.Popen(cmd, stdout=out, stderr=errf, text=True, env=env, start_new_session=True,
                            preexec_fn=interruptible)
    deadline = time.time() + 300  # a slow, shared machine starts the fit late
    saved = lambda: list(Path("lightning_logs/cae").glob("version_*/checkpoints/last.ckpt"))  # noqa: E731
    while time.time() < deadline and not saved():
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C reaches the whole foreground group
    proc.wait(timeout=300)
    err = open("stop.err").read()
    assert proc.returncode == 130, err
    assert "Traceback" not in err, err
    (line,) = [ln for ln in err.strip().splitlines() if ln.startswith("aecls")]
    assert line == ("aecls: fit interrupted (Ctrl-C); `--ckpt_path last` resumes it from its last "
                    "finished epoch")


def test_validate_reads_a_checkpoint_the_library_wrote(tiny_data, capsys):
    """A fit by `train` (the pipeline's, a study's) records its class as LightningCLI does, so
    `aecls validate --ckpt_path` rebuilds it."""
    from aecls.cli import main

    cfg = load_train_config(CONFIGS / "dae.yaml", data_dir=str(tiny_data))
    cfg.data.update(val_size=50, batch_size=32)
    cfg.model["init_args"]["net"]["n_channels"] = 4
    cfg.trainer.update(max_epochs=1, limit_train_batches=2)
    cfg.test = None
    run = train(cfg)
    assert main(["validate", "--config", str(CONFIGS / "dae.yaml"), "--ckpt_path", run.best_path,
                 "--data.data_dir", str(tiny_data), "--data.val_size", "50",
                 "--trainer.enable_progress_bar", "false"]) == 0
    assert "val/psnr_noisy" in capsys.readouterr().out  # the DAE's own metric: the right class
