"""`aecls fit --ckpt_path`: a resume that cannot work says why in one line, before Lightning speaks."""

from __future__ import annotations

import warnings
from pathlib import Path

from tests.helpers import fit, one_line_error

TINY_FIT = ["--test_after_fit", "false"]


def test_training_a_finished_one_cycle_run_longer_says_why_not(tiny_data, capsys):
    assert fit(tiny_data, "cae.yaml", "--trainer.max_epochs", "1", *TINY_FIT) == 0
    capsys.readouterr()
    assert fit(tiny_data, "cae.yaml", "--trainer.max_epochs", "2", "--ckpt_path", "last", *TINY_FIT) == 2
    err = one_line_error(capsys)
    assert "one-cycle lr schedule was laid out for 10 steps" in err
    assert "this fit changes trainer.max_epochs 1 -> 2;" in err


def test_resuming_with_another_length_names_the_setting_before_lightning_speaks(tiny_data, capsys):
    """Issue #40, 3: only limit_train_batches changed: that is named (not "max_epochs changed?"),
    and the refusal comes before the fit's warnings."""
    assert fit(tiny_data, "cae.yaml", "--trainer.max_epochs", "1", *TINY_FIT) == 0
    capsys.readouterr()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert fit(tiny_data, "cae.yaml", "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "3",
                   "--ckpt_path", "last", *TINY_FIT) == 2
    err = one_line_error(capsys)
    assert "this fit changes trainer.limit_train_batches 1.0 -> 3;" in err and "max_epochs" not in err
    assert [str(w.message) for w in caught if "lightning" in w.filename] == []
    # the run's own length still resumes (here: nothing left to do), and cosine can be extended
    assert fit(tiny_data, "cae.yaml", "--trainer.max_epochs", "1", "--ckpt_path", "last", *TINY_FIT) == 0


def test_missing_checkpoint_is_one_line_and_writes_nothing(tiny_data, capsys):
    assert fit(tiny_data, "cae.yaml", "--ckpt_path", "nothere.ckpt", *TINY_FIT) == 2
    assert "--ckpt_path nothere.ckpt: no such checkpoint file" in one_line_error(capsys)
    assert not Path("checkpoints").exists() and not Path("lightning_logs").exists()
