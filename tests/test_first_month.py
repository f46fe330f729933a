"""The first month's defects, each as a user met it: a bad input is one line and exit 2 with
nothing written, a path is a path, slow work is opt-in, printed commands work from any folder,
TensorBoard's hp_metric is the family's score."""

from __future__ import annotations

from pathlib import Path

import pytest

from aecls.cli import main
from tests.helpers import fit, one_line_error


@pytest.mark.parametrize(("argv", "said"), [
    (["--seeds", "0"], "seeds must be >= 1"),
    (["--labels", "all"], "label budgets must be numbers >= 10"),
    (["--algorithms", "magic"], "unknown algorithms ['magic']"),
])
def test_labelling_refuses_bad_input_and_writes_nothing(tiny_data, capsys, argv, said):
    assert main(["transfer", "labelling", "--encoder", "a=nothere.pt", "--data-dir", str(tiny_data),
                 "--out", "lab", *argv]) == 2
    assert said in one_line_error(capsys)
    assert not Path("lab").exists()


def test_labelling_runs_the_fast_algorithms_unless_told(capsys):
    import inspect

    from aecls.transfer import graph
    from aecls.transfer.labelling import measure

    assert "poisson_mbo" in graph.ALGORITHMS and "poisson_mbo" not in graph.FAST
    assert inspect.signature(measure).parameters["algorithms"].default == graph.FAST
    with pytest.raises(SystemExit):
        main(["transfer", "labelling", "--help"])
    said = " ".join(capsys.readouterr().out.split())
    assert "default poisson,laplace,poisson_priors; also poisson_mbo" in said and "minutes a solve" in said


def test_a_path_with_an_equals_sign_is_a_path(tmp_path):
    import argparse

    from aecls.cli.transfer import _named

    ckpt = tmp_path / "best-epoch=0.ckpt"
    ckpt.write_bytes(b"")
    assert _named(str(ckpt)) == ("best-epoch=0", str(ckpt))
    assert _named(f"cae={ckpt}") == ("cae", str(ckpt))  # NAME=PATH, the PATH with its own "="
    assert _named("cae=nothere.pt") == ("cae", "nothere.pt")  # the library says it is not there
    for bad in ("nothere.pt", "lightning_logs/x/best-epoch=0.ckpt", "=x", "cae="):
        with pytest.raises(argparse.ArgumentTypeError, match="want NAME=PATH"):
            _named(bad)


def test_study_best_names_a_missing_storage(capsys):
    assert main(["study", "best", "tiny", "--storage", "sqlite:///my/nothere.db"]) == 2
    err = one_line_error(capsys)
    assert "storage sqlite:///my/nothere.db: no such file" in err and "study file not found" not in err
    assert not Path("my").exists()  # reading a study creates no storage


@pytest.mark.parametrize("argv", [
    ["transfer", "sweep", "--encoder", "x", "--labels", "abc"],
    ["study", "run"],
    ["fit", "--config", "configs/nothere.yaml"],
    ["fit", "--trainer.max_epochs", "abc"],
])
def test_a_bad_command_line_is_one_line(capsys, argv):
    if argv[0] == "fit":  # LightningCLI's errors come back as aecls's: exit 2
        assert main(argv) == 2
    else:  # argparse's: exit 2 from the parser
        with pytest.raises(SystemExit) as stop:
            main(argv)
        assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "error:" in err and "--help" in err and "Traceback" not in err


def test_help_lists_every_transfer_command(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("transfer sweep", "transfer compare", "transfer labelling"):
        assert f"aecls {command}" in out


def test_hp_metric_is_the_family_score_with_no_placeholder(tiny_data, capsys):
    """A VAE's hp_metric is its ELBO (the score its studies compare), not its beta-weighted loss,
    and no -1 stands at step 0."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    assert fit(tiny_data, "vae.yaml", "--trainer.max_epochs", "2", "--model.init_args.beta", "3",
               "--test_after_fit", "false") == 0
    events = EventAccumulator("lightning_logs/vae/version_0").Reload()
    hp = [(e.step, e.value) for e in events.Scalars("hp_metric")]
    from aecls.modules.registry import family

    score = [(e.step, e.value) for e in events.Scalars(family("vae").score)]
    assert [s for s, _ in hp] == [s for s, _ in score] and len(hp) == 2
    assert [v for _, v in hp] == pytest.approx([v for _, v in score])
    assert all(v != -1 for _, v in hp)
    loss = [e.value for e in events.Scalars("val/loss")]
    assert [v for _, v in hp] != pytest.approx(loss)  # beta 3: the loss is another quantity


def test_a_study_can_look_quickly_below_one_epoch(tiny_data, capsys):
    import torch

    from aecls.hpo.run import run_study
    from aecls.hpo.space import load_study
    from tests.helpers import write_study

    spec = load_study(write_study("quick", epochs=1, n_trials=1, train_fraction=0.25))
    study = run_study(spec, 1, "sqlite:///q.db", data_dir=str(tiny_data), progress=False)
    (trial,) = study.trials
    ckpt = torch.load(trial.user_attrs["checkpoint"], weights_only=True)
    assert ckpt["global_step"] == 1  # 350 training images, batch 64: 6 batches, a quarter of them
    assert study.user_attrs["spec"]["train_fraction"] == 0.25
    # a continued study cannot mix lengths
    whole = load_study(write_study("quick", epochs=1, n_trials=2))
    assert main(["study", "run", "quick.yaml", "--storage", "sqlite:///q.db",
                 "--data-dir", str(tiny_data), "--no-progress"]) == 2
    assert "train_fraction changed" in one_line_error(capsys)
    assert whole.train_fraction == 1.0 and "train_fraction" not in whole.fingerprint()
    for bad in (0, 1.5, "half"):
        with pytest.raises(Exception, match="train_fraction must be in"):
            load_study(write_study("bad", train_fraction=bad))
