"""A new user's first hour (issue #20): each mistake found by trying aecls as a new user is one
clear line and exit 2, nothing is written where the user did not ask, no password is shown, and
no quiet wrong answer is given. One test (or a table row) per defect, with the exact command."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import optuna
import pytest
import yaml
from optuna.trial import TrialState

from aecls.cli import main
from aecls.cli.main import _parser
from aecls.data.subsets import stratified_subset
from aecls.errors import AeclsError, mask_secrets
from aecls.hpo.space import load_study
from aecls.hpo.storage import make_storage
from tests.helpers import CONFIGS, fit, interruptible, record_settings, write_study

TINY_FIT = ["--test_after_fit", "false"]


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("aecls: error: ") and "\n" not in err and "Traceback" not in err, err
    return err


# -- 1, 2: crashes of `aecls fit --ckpt_path` ------------------------------------------------------

def test_training_a_finished_one_cycle_run_longer_says_why_not(tiny_data, capsys):
    assert fit(tiny_data, "cae.yaml", "--trainer.max_epochs", "1", *TINY_FIT) == 0
    capsys.readouterr()
    assert fit(tiny_data, "cae.yaml", "--trainer.max_epochs", "2", "--ckpt_path", "last", *TINY_FIT) == 2
    err = _one_line_error(capsys)
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
    err = _one_line_error(capsys)
    assert "this fit changes trainer.limit_train_batches 1.0 -> 3;" in err and "max_epochs" not in err
    assert [str(w.message) for w in caught if "lightning" in w.filename] == []
    # the run's own length still resumes (here: nothing left to do), and cosine can be extended
    assert fit(tiny_data, "cae.yaml", "--trainer.max_epochs", "1", "--ckpt_path", "last", *TINY_FIT) == 0


def test_missing_checkpoint_is_one_line_and_writes_nothing(tiny_data, capsys):
    assert fit(tiny_data, "cae.yaml", "--ckpt_path", "nothere.ckpt", *TINY_FIT) == 2
    assert "--ckpt_path nothere.ckpt: no such checkpoint file" in _one_line_error(capsys)
    assert not Path("checkpoints").exists() and not Path("lightning_logs").exists()


# -- 3, 4, 5: a study file is checked before the first trial ----------------------------------------

@pytest.mark.parametrize(("over", "message"), [
    ({"epochs": "three"}, "epochs must be a whole number, got 'three'"),
    ({"n_trials": 2.5}, "n_trials must be a whole number, got 2.5"),
    ({"data": {"batch_sise": 128}}, "data: FashionMNISTDataModule.__init__() got an unexpected keyword "
                                    "argument 'batch_sise'"),
    ({"data": {"batch_size": 0}}, "data: batch sizes must be positive"),
    ({"space": {"optimizer": {"type": "categorical", "choices": ["adam", "adamx"]}}},
     "search-space entry optimizer='adamx': optim.name must be one of"),
    ({"space": {"lr": {"type": "float", "low": 0.0, "high": 0.1}}},
     "search-space entry lr=0.0: optim.lr must be > 0"),
    ({"space": {"scheduler": {"type": "categorical", "choices": ["onecycle", "step"]}}},
     "search-space entry scheduler='step'"),
    ({"space": {"loss": {"type": "categorical", "choices": ["mse", "l1"]}}}, "search-space entry loss='l1'"),
    ({"trainer": {"precision": "fp8"}}, "trainer: ValueError: Precision 'fp8' is invalid"),
])
def test_study_file_mistakes_name_the_file_and_key(over, message):
    path = write_study("bad", **over)
    with pytest.raises(AeclsError) as e:
        load_study(path)
    assert str(e.value).startswith(f"{path}: study bad: ") and message in str(e.value), str(e.value)


def test_every_reading_command_takes_allow_changes(tiny_data, capsys):
    path = write_study("tiny", epochs=1)
    assert main(["study", "run", str(path), "--n-trials", "1", "--data-dir", str(tiny_data),
                 "--no-progress"]) == 0
    path.write_text(yaml.safe_dump({**yaml.safe_load(path.read_text()), "epochs": 2}))
    capsys.readouterr()
    for cmd in (["study", "plots", str(path)], ["study", "best", str(path), "--seeds", "1"]):
        assert main([*cmd, "--data-dir", str(tiny_data)]) == 2
        assert "allow the changes to continue it anyway" in (err := _one_line_error(capsys))
        assert err.endswith("[--allow-changes]")
        assert main([*cmd, "--data-dir", str(tiny_data), "--allow-changes"]) == 0


# -- 6, 7, 13: nothing written where the user did not ask ----------------------------------------

@pytest.mark.parametrize("command", ["best", "plots"])
def test_reading_commands_create_no_storage_and_no_study(command, tiny_data, capsys):
    path = write_study("tiny")
    assert main(["study", command, str(path), "--storage", "sqlite:///nonexist.db"]) == 2
    assert "no such file (nonexist.db)" in _one_line_error(capsys)
    assert not Path("nonexist.db").exists()
    assert main(["study", command, str(path), "--storage", "journal:none.journal"]) == 2
    assert "no such file (none.journal)" in _one_line_error(capsys)
    assert not Path("none.journal").exists()
    optuna.create_study(study_name="other", storage="sqlite:///other.db")
    assert main(["study", command, str(path), "--storage", "sqlite:///other.db"]) == 2
    assert "no study tiny on sqlite:///other.db" in _one_line_error(capsys)
    assert optuna.get_all_study_names("sqlite:///other.db") == ["other"]


def test_same_study_name_on_two_storages_does_not_mix_outputs(tiny_data, capsys):
    path = str(write_study("tiny", epochs=1))
    common = ["--n-trials", "1", "--data-dir", str(tiny_data), "--no-progress"]
    assert main(["study", "run", path, *common]) == 0
    capsys.readouterr()
    assert main(["study", "run", path, *common, "--storage", "journal:tiny.journal"]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert len(err.splitlines()) == 1, err  # one line, and no "A new study created" before it
    # both storages written alike (absolute paths), and the refusal created neither study nor file
    assert (f"lightning_logs/tiny holds study tiny of storage {Path('optuna.db').resolve()}, "
            f"not of {Path('tiny.journal').resolve()}:") in err
    assert "created" not in captured.out + captured.err
    assert not Path("tiny.journal").exists()
    assert sorted(p.name for p in Path("lightning_logs/tiny").iterdir()) == [".aecls_storage", "trial_0"]
    assert len(list(Path("lightning_logs/tiny/trial_0").glob("events.out.tfevents.*"))) == 1
    # its own folders are fine
    assert main(["study", "run", path, *common, "--storage", "journal:tiny.journal",
                 "--log-dir", "logs_j", "--out", "out_j"]) == 0


def test_file_storages_need_an_existing_folder_and_make_none():
    for url in ("journal:/nonexistent_dir/x.journal", "sqlite:////nonexistent_dir/x.db"):
        with pytest.raises(AeclsError, match="folder /nonexistent_dir does not exist; create it first"):
            make_storage(url)
    assert not Path("/nonexistent_dir").exists()


# -- 8: no password shown ----------------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "cannot open storage postgresql://aecls:s3cret@127.0.0.1:5/optuna: OperationalError",
    "could not parse 'postgresql+psycopg://aecls:s3cret@host/db'",
    "postgresql://aecls:s3cret@h/db and mysql://u:s3cret@h2/db",
])
def test_mask_secrets(text):
    masked = mask_secrets(text)
    assert "s3cret" not in masked and ":***@" in masked


def test_no_password_when_the_server_is_down(capsys):
    path = str(write_study("tiny"))
    url = "postgresql://aecls:s3cret@127.0.0.1:1/optuna"  # nothing listens on port 1
    for cmd in (["study", "best", path], ["study", "plots", path], ["study", "run", path, "--n-trials", "1"]):
        assert main([*cmd, "--storage", url]) == 2
        err = _one_line_error(capsys)
        assert "s3cret" not in err and "aecls:***@127.0.0.1:1" in err, err


# -- 9, 10: no quiet wrong answers ----------------------------------------------------------------------

def _sweep(path: Path, accs: list[float]) -> Path:
    path.mkdir()
    with open(path / "sweep.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["labels", "seed", "method", "test_acc"])
        w.writeheader()
        w.writerows({"labels": 100, "seed": s, "method": "frozen", "test_acc": a} for s, a in enumerate(accs))
    record_settings(path / "sweep.csv")
    return path


def test_compare_gives_no_verdict_on_one_seed(tmp_path, capsys):
    a, b = _sweep(tmp_path / "a", [0.70]), _sweep(tmp_path / "b", [0.66])
    assert main(["transfer", "compare", f"recon={a}", f"cae={b}", "--out", "cmp"]) == 0
    text = Path("cmp/compare.md").read_text()
    paired = text.split("## Paired differences")[1].split("\n## ")[0]
    row = next(line for line in paired.splitlines() if line.startswith("| 100"))
    assert "loses" not in row and "-4.00 (1 seed)" in row
    # issue #40, 9: with too few seeds for any test, said once above each table, no verdict column
    assert "No verdict in this table: its cells have 1 paired seed(s), and a paired test needs 3" in paired
    assert "verdict |" not in paired.splitlines()[2] and "no verdict" not in row
    assert "needed: no verdict" not in text and text.count("No verdict in this table") >= 2


def test_best_refuses_zero_seeds(capsys):
    assert main(["study", "best", str(write_study("tiny")), "--seeds", "0"]) == 2
    assert "--seeds must be >= 1, got 0" in _one_line_error(capsys)


# -- 11: Ctrl-C in `study run` ---------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_ctrl_c_fails_and_requeues_the_running_trials(tiny_data, workers):
    path = write_study("tiny", epochs=5000)  # far longer than the test: interrupted mid-fit, never done
    storage = "sqlite:///optuna.db" if workers == 1 else "journal:optuna.journal"
    cmd = [sys.executable, "-m", "aecls.cli", "study", "run", str(path), "--n-trials", str(workers),
           "--data-dir", str(tiny_data), "--no-progress", "--workers", str(workers), "--storage", storage]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    # Output to files, not pipes: nothing reads a pipe while the test waits, and a full one would
    # block the process in a write, where no signal is handled.
    out, errf = open("stop.out", "w+"), open("stop.err", "w+")
    proc = subprocess.Popen(cmd, stdout=out, stderr=errf, text=True, env=env, preexec_fn=interruptible,
                            start_new_session=True)  # its own process group, as in a terminal
    deadline = time.time() + 300  # a slow, shared machine starts the fit late
    started = lambda: len(list(Path("lightning_logs/tiny").glob("trial_*/events.*")))  # noqa: E731
    while time.time() < deadline and started() < workers:
        time.sleep(0.5)
    time.sleep(2)  # into the fits
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C reaches the whole foreground group
    proc.wait(timeout=300)
    err = open("stop.err").read()
    assert proc.returncode == 130, err
    (line,) = [ln for ln in err.strip().splitlines() if ln.startswith("aecls")]
    assert line.startswith("aecls: interrupted (Ctrl-C): study tiny: trial 0 failed, re-queued as trial ")
    assert line.endswith("; `aecls study run` continues it") and line.count("re-queued") == workers, err
    study = optuna.load_study(study_name="tiny", storage=make_storage(storage))
    assert [t.state for t in study.trials] == [TrialState.FAIL] * workers + [TrialState.WAITING] * workers
    params = sorted(str(t.params) for t in study.trials[:workers])
    assert sorted(str(t.params) for t in study.trials[workers:]) == params  # the same configs again


# -- 12: test metrics in TensorBoard after `aecls fit` ----------------------------------------------------

def test_fit_logs_its_test_metrics_to_tensorboard(tiny_data):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    assert fit(tiny_data, "cae.yaml", "--trainer.max_epochs", "1") == 0
    tags = EventAccumulator("lightning_logs/cae/version_0").Reload().Tags()["scalars"]
    assert {"test/loss", "test/mse", "test/psnr"} <= set(tags)


# -- 14: small ones ------------------------------------------------------------------------------------

def test_every_label_budget_up_to_the_whole_split():
    labels = np.repeat(np.arange(10), [5480, 5510, 5500, 5490, 5505, 5495, 5520, 5500, 5470, 5530])
    idx = stratified_subset(labels, len(labels), seed=0)
    assert len(idx) == len(labels) == 55_000
    few = stratified_subset(labels, 100, seed=0)
    assert np.bincount(labels[few]).tolist() == [10] * 10  # budgets below the classes: as before
    with pytest.raises(AeclsError, match="label budget 55001 is more than the 55000 images"):
        stratified_subset(labels, 55_001, seed=0)


def test_printed_tool_commands_work_from_any_folder(tiny_data, capsys):
    path = write_study("tiny", epochs=1)
    assert main(["study", "run", str(path), "--n-trials", "1", "--data-dir", str(tiny_data),
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    dash = next(line for line in out.splitlines() if line.startswith("dashboard: "))
    exe = dash.split()[1]
    assert Path(exe).is_absolute() and Path(exe).name == "optuna-dashboard"


def test_pipeline_study_stage_says_fresh_or_continued(monkeypatch, capsys):
    from aecls import pipeline

    spec, storage = load_study(write_study("tiny", n_trials=3)), "sqlite:///optuna.db"
    assert pipeline._study_progress(spec, storage) == "3 trials"
    study = optuna.create_study(study_name="tiny", storage=storage)
    study.add_trial(optuna.trial.create_trial(value=1.0))
    assert pipeline._study_progress(spec, storage) == "continues an earlier run (1 of 3 trials done)"


def test_aecls_test_prints_no_advert_and_shows_progress(tiny_data, capsys, monkeypatch):
    assert fit(tiny_data, "vae.yaml", "--trainer.max_epochs", "1", *TINY_FIT) == 0
    (best,) = Path("lightning_logs/vae").glob("version_0/checkpoints/best-*.ckpt")
    capsys.readouterr()
    assert main(["test", "--ckpt", str(best), "--accelerator", "cpu", "--nll-samples", "2"]) == 0
    captured = capsys.readouterr()
    assert "litlogger" not in captured.out + captured.err
    # outside a terminal (pytest's capture): the cost said in one line, and no bar frames (#40, 10)
    assert "aecls: test/nll: 2 importance samples" in captured.out and "\r" not in captured.out
    import aecls.progress

    monkeypatch.setattr(aecls.progress, "in_terminal", lambda stream=None: True)
    assert main(["test", "--ckpt", str(best), "--accelerator", "cpu", "--nll-samples", "2"]) == 0
    captured = capsys.readouterr()
    assert "Testing" in captured.out + captured.err  # in a terminal: the bar over the test batches


# -- help texts -------------------------------------------------------------------------------------------

def _all_parsers(parser, prefix=()):
    yield prefix, parser
    for action in parser._actions:
        if action.choices and hasattr(action, "_name_parser_map"):
            for name, sub in action._name_parser_map.items():
                yield from _all_parsers(sub, (*prefix, name))


def test_help_says_what_every_option_does_and_its_default():
    top = _parser().format_help()
    for command in ("study plots", "transfer compare", "validate"):
        assert f"aecls {command}" in top
    for path, parser in _all_parsers(_parser()):
        if path and path[-1] in ("fit", "validate"):
            continue  # LightningCLI's own help
        formatter = parser._get_formatter()
        for action in parser._actions:
            if not action.option_strings or action.dest == "help":
                continue
            assert action.help, (path, action.option_strings)
            if action.nargs != 0 and action.default not in (None, False):
                assert "default" in formatter._get_help_string(action), (path, action.option_strings)
        if path and path[-1] not in ("fit", "validate"):  # every command says what it does (#31)
            assert parser.description, path
    seeds = next(p for path, p in _all_parsers(_parser()) if path == ("study", "best")).format_help()
    assert "(default: 3)" in seeds.replace("\n", " ").replace("  ", " ")


def test_readme_names_the_common_mistakes_and_what_multi_and_knee_give():
    readme = (CONFIGS.parent / "README.md").read_text()
    studies = (CONFIGS.parent / "docs" / "studies.md").read_text()  # the README links it
    assert "## Common mistakes" in readme and "docs/studies.md" in readme
    assert "Pareto front" in studies and "--select knee" in studies
    assert "--data.data_dir" in readme
