"""What the commands print and draw: test metrics in TensorBoard, progress without a terminal, costs
said first, commands that work when copied, help texts, plots."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna
import pytest

from aecls.cli import main
from aecls.cli.main import _parser
from aecls.core.errors import AeclsError
from aecls.data.subsets import stratified_subset
from aecls.hpo.space import load_study
from aecls.modules import AutoEncoder
from aecls.modules.encoders import export_encoder
from aecls.nets import NetConfig
from tests.helpers import CONFIGS, fit, write_study

TINY_FIT = ["--test_after_fit", "false"]


def _all_parsers(parser, prefix=()):
    yield prefix, parser
    for action in parser._actions:
        if action.choices and hasattr(action, "_name_parser_map"):
            for name, sub in action._name_parser_map.items():
                yield from _all_parsers(sub, (*prefix, name))


def test_fit_logs_its_test_metrics_to_tensorboard(tiny_data):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    assert fit(tiny_data, "cae.yaml", "--trainer.max_epochs", "1") == 0
    tags = EventAccumulator("lightning_logs/cae/version_0").Reload().Tags()["scalars"]
    assert {"test/loss", "test/mse", "test/psnr"} <= set(tags)


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
    assert pipeline.study_progress(spec, storage) == "3 trials"
    study = optuna.create_study(study_name="tiny", storage=storage)
    study.add_trial(optuna.trial.create_trial(value=1.0))
    assert pipeline.study_progress(spec, storage) == "continues an earlier run (1 of 3 trials done)"
    assert pipeline.study_progress(spec, storage, 2).endswith("(1 of 3 trials done), 2 workers")
    for _ in range(2):
        study.add_trial(optuna.trial.create_trial(value=1.0))
    # finished: no workers start, so none is announced
    assert pipeline.study_progress(spec, storage, 2) == "continues an earlier run (3 of 3 trials done)"


def test_aecls_test_prints_no_advert_and_shows_progress(tiny_data, capsys, monkeypatch):
    assert fit(tiny_data, "vae.yaml", "--trainer.max_epochs", "1", *TINY_FIT) == 0
    (best,) = Path("lightning_logs/vae").glob("version_0/checkpoints/best-*.ckpt")
    capsys.readouterr()
    assert main(["test", "--ckpt", str(best), "--accelerator", "cpu", "--nll-samples", "2"]) == 0
    captured = capsys.readouterr()
    assert "litlogger" not in captured.out + captured.err
    # outside a terminal (pytest's capture): the cost said in one line, and no bar frames (#40, 10)
    assert "aecls: test/nll: 2 importance samples" in captured.out and "\r" not in captured.out
    import aecls.core.progress

    monkeypatch.setattr(aecls.core.progress, "in_terminal", lambda stream=None: True)
    assert main(["test", "--ckpt", str(best), "--accelerator", "cpu", "--nll-samples", "2"]) == 0
    captured = capsys.readouterr()
    assert "Testing" in captured.out + captured.err  # in a terminal: the bar over the test batches


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


def test_printed_commands_are_shell_quoted(tiny_data, capsys):
    import shlex

    folder = Path("my runs")
    folder.mkdir()
    path = write_study("spaced", epochs=1, n_trials=1)
    storage = f"sqlite:///{folder}/o.db"
    assert main(["study", "run", str(path), "--storage", storage, "--data-dir", str(tiny_data),
                 "--log-dir", "my logs", "--no-progress"]) == 0
    out = capsys.readouterr().out
    dashboard = next(ln for ln in out.splitlines() if ln.startswith("dashboard: "))
    tensorboard = next(ln for ln in out.splitlines() if ln.startswith("TensorBoard: "))
    here = Path.cwd()  # absolute paths: the commands work pasted in any folder
    assert shlex.split(dashboard.removeprefix("dashboard: "))[1:] == [
        f"sqlite:///{here / folder / 'o.db'}", "--artifact-dir", str(here / folder / "o_artifacts")]
    logs = str(here / "my logs/spaced")
    assert shlex.split(tensorboard.removeprefix("TensorBoard: "))[1:] == ["--logdir", logs]


def test_whole_epochs_and_no_one_parameter_importance(tiny_data, capsys):
    from aecls.hpo.space import load_study
    from aecls.hpo.summary import study_outputs

    path = write_study("onep", epochs=3, n_trials=2, pruner="none",
                       space={"lr": {"type": "float", "low": 1e-3, "high": 1e-2}, "n_channels": 2})
    assert main(["study", "run", str(path), "--data-dir", str(tiny_data), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "importances: not plotted, one searched parameter (lr)" in out
    assert not Path("artifacts/onep/importances.png").exists()
    spec = load_study(path)
    study = optuna.load_study(study_name="onep", storage="sqlite:///optuna.db")
    import matplotlib.pyplot as plt

    seen = []
    real = plt.Figure.savefig

    def spy(fig, *a, **k):
        seen.append([t for ax in fig.axes for t in ax.get_xticks()])
        return real(fig, *a, **k)

    plt.Figure.savefig = spy
    try:
        study_outputs(spec, study, "again")
    finally:
        plt.Figure.savefig = real
    assert all(float(t).is_integer() for t in seen[-1])  # val_curves.png: whole epochs only


def test_a_vae_test_says_its_cost_before_it_starts(tiny_data, capsys):
    from tests.helpers import fit

    assert fit(tiny_data, "vae.yaml", "--trainer.max_epochs", "1", "--model.init_args.nll_samples", "3") == 0
    out = capsys.readouterr().out
    said = out.index("aecls: test/nll: 3 importance samples per test image")
    assert said < out.index("test/nll ")  # before the metric it is about
    assert "nll_samples sets it" in out


def test_a_sweep_without_progress_bar_prints_a_line_per_run(tiny_data, tmp_path, capsys):
    ae = AutoEncoder(NetConfig(latent_dim=8, n_channels=4, hidden=0))
    enc = export_encoder(tmp_path / "enc.pt", ae.encoder, ae.net_cfg, "cae")
    assert main(["transfer", "sweep", "--encoder", str(enc), "--labels", "20", "--seeds", "2",
                 "--methods", "logreg_pixels", "--data-dir", str(tiny_data), "--val-size", "50",
                 "--no-progress"]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("run ")]
    assert [ln.split(":")[0] for ln in lines] == ["run 1/2", "run 2/2"]
    assert "20 labels, seed 1, logreg_pixels: test accuracy" in lines[1]
