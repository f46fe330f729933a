"""Issue #51: `aecls pipeline --full` after the fits, at a tiny scale on synthetic data: the
encoders kept and hashed, every setting chosen on validation rows (which read no test image or
label), every method on the kept encoders, the comparison the headline reads, a cell re-scored from
the kept files; and the plan that says what the real scale costs."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from aecls import fullrun, pipeline
from aecls.core.paths import SWEEP_CSV
from aecls.data.idx import write_idx
from aecls.data.locate import SPLIT_FILES
from aecls.modules.encoders import export_encoder
from aecls.modules.registry import code_halves
from aecls.nets import NetConfig, build_encoder
from aecls.transfer.runs import read_rows
from tests.conftest import write_dataset
from tests.helpers import CONFIGS, write_study

SWEEP = {"val_size": 200, "epochs": 1, "min_steps": 2, "batch_size": 64, "fixmatch_steps": 2,
         "monitor_every": 1, "pseudo_passes": 1, "unlabelled_ratio": 1}


def tiny(out: str, data: Path) -> fullrun.Full:
    return fullrun.Full(out=out, few=(20,), many=(None,), seeds=1, extra_seeds=1, best_cells=2, grid_seeds=1,
                        grid={"pseudo_keep": (0.5, 1.0)}, rounds_max=2,
                        rounds_grid={"rounds_weighting": ("certainty", "none")}, sweep=SWEEP,
                        data_dir=str(data))


def fake_encoders(monkeypatch) -> None:
    """The study's export and a fit per family, as encoder exports of random tiny nets (what the
    full run's earlier stages leave), found where `keep` looks."""
    net = NetConfig(n_channels=4, latent_dim=6).validate()
    found = {}
    for k, name in enumerate(fullrun.ENCODERS):
        torch.manual_seed(k)
        path = Path("fits") / f"{name}.pt"
        path.parent.mkdir(exist_ok=True)
        found[name] = export_encoder(path, build_encoder(net, out_mult=code_halves(name)), net, name)
    Path("artifacts/tiny").mkdir(parents=True)
    shutil.copy(found["cae"], "artifacts/tiny/best_encoder.pt")
    monkeypatch.setattr(fullrun, "latest", lambda log_dir, name: found[name])


def run_chain(full: fullrun.Full, until: str | None = None) -> None:
    """The full run's stages after the fits, in this process (the earlier ones: done)."""
    stages, _ = pipeline.full_stages(full, "tiny", pipeline.FULL)
    if until is not None:
        stages = stages[:[t.name for t in stages].index(until) + 1]
    before = {n for t in stages for n in t.needs} - {t.name for t in stages}
    done = [pipeline.Stage(n, n, print, done=lambda: Path(".")) for n in sorted(before)]
    pipeline.run_stages(done + stages, pipeline.Stages(), Path("logs"))


def garbage_test_files(src: Path, dst: Path) -> Path:
    """`src`'s IDX files with the test images and labels replaced by random ones."""
    shutil.copytree(src, dst)
    rng = np.random.default_rng(99)
    images_name, labels_name = SPLIT_FILES["test"]
    write_idx(dst / f"{images_name}.gz", rng.integers(0, 256, (200, 28, 28), dtype=np.uint8))
    write_idx(dst / f"{labels_name}.gz", rng.integers(0, 10, 200).astype(np.uint8))
    return dst


@pytest.mark.slow
def test_the_full_chain_chooses_on_validation_and_tests_every_method(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(pipeline, "side_slots", lambda cores=None, tasks=None: (1, 1))  # in this process
    data = write_dataset(tmp_path / "data", n_train=1200, n_test=200)
    fake_encoders(monkeypatch)
    full = tiny("results/full", data)
    run_chain(full)
    out = capsys.readouterr().out
    assert "runs done; about" in out  # the progress line before each wave
    # kept: weights and config alone, hashed; every sweep recorded the hashes of the files it read
    kept = json.loads(Path("results/full/encoders/encoders.json").read_text())
    assert set(kept) == set(fullrun.ENCODERS) and all(k["bytes"] > 0 for k in kept.values())
    chosen = json.loads(Path("results/full/selection/chosen.json").read_text())["20"]
    assert chosen["encoder"] in fullrun.TRANSFERRED and chosen["pseudo_point"] in ("keep0.5", "keep1.0")
    assert len(chosen["extra"]) == 2
    # the rounds: a grid point and a number of rounds from the validation curves, then on test images
    assert chosen["rounds_point"] in ("wcertainty", "wnone") and chosen["rounds"]["rounds"] in (1, 2)
    assert "rounds rounds" in chosen["val_means"]
    tested = json.loads(Path("results/full/test/rounds_20/sweep.json").read_text())["settings"]
    assert {k: tested[k] for k in chosen["rounds"]} == chosen["rounds"]
    # every method of the issue ran on test images, on the kept encoders
    runs = {n: [read_rows(p) for p in ps] for n, ps in fullrun.compared(full).items()}
    ran = {r["method"] for rows in runs.values() for rs in rows for r in rs}
    assert ran >= {"scratch", "frozen", "finetune", "logreg_pixels", "logreg_pca", "pseudo", "fixmatch",
                   "pseudo_fixmatch", "rounds", *fullrun.GRAPH}
    for sweep, method in chosen["extra"]:  # the best cells have the extra seed
        folder = f"{sweep}_20" if sweep in (fullrun.CHOSEN, fullrun.ROUNDS) else sweep
        seeds = {r["seed"] for r in read_rows(f"results/full/test/{folder}/{SWEEP_CSV}")
                 if r["method"] == method and r["budget"] == "20"}
        assert seeds == {"0", "1"}, (sweep, method, seeds)
    assert json.loads(Path("results/full/compare.json").read_text())["vary"] == sorted(fullrun.VARIED)
    # the headline reads the run's comparison; the kept encoders verify
    from aecls.core.errors import AeclsError
    from aecls.report.results import headline, verify_encoders
    from aecls.transfer.sweep import rescore, run_sweep

    table = headline("results/full")
    assert "| 20 |" in table and "| all |" not in table.split("\n")[0]
    Path("R.md").write_text("<!-- headline: results/full -->\n<!-- /results -->\n")
    assert verify_encoders("R.md") == len(fullrun.ENCODERS)  # each kept file once
    # one cell again, from the kept files: the same accuracy as its row
    now, was = rescore("results/full/test/dae/sweep.csv", 20, 0, "finetune", out="again")
    assert was is not None and now == pytest.approx(was, abs=1e-6)
    with open("results/full/encoders/dae.pt", "ab") as f:  # a kept encoder changed: refused
        f.write(b"x")
    for refused in (lambda: verify_encoders("R.md"), lambda: run_sweep(fullrun.test_config(full, "dae")),
                    lambda: rescore("results/full/test/dae/sweep.csv", 20, 0, "finetune")):
        with pytest.raises(AeclsError, match=r"dae\.pt"):
            refused()


@pytest.mark.slow
def test_aecls_pipeline_full_from_the_study_to_the_report(tmp_path, monkeypatch, capsys):
    """`aecls pipeline --full` end to end at a tiny scale: study, fits, kept encoders, selection,
    test sweeps, comparison and the report that reads them."""
    data = write_dataset(tmp_path / "data", n_train=6000, n_test=200)  # the configs' 5,000 validation
    Path("configs").symlink_to(CONFIGS)
    study = write_study("tiny", epochs=1, data={"val_size": 5000, "batch_size": 128})
    small = replace(pipeline.FULL, study=str(study), seeds=1, fit_epochs=1,
                    fit_args={"vae": {"nll_samples": 5}}, chooses=tiny(fullrun.OUT, data))
    monkeypatch.setattr(pipeline, "FULL", small)
    report = pipeline.run_pipeline(full=True, data_dir=str(data))
    assert "pipeline done" in capsys.readouterr().out
    text = report.read_text()
    assert "## Few labels: which pretraining, which method" in text and "(chosen for 20)" in text
    assert "Label propagation, per round" in text  # the rounds' curves, beside the table
    assert (report.parent / "test_rounds_20_rounds.png").stat().st_size > 5000
    assert "## Missing" not in text, text.split("## Missing")[1][:500]
    assert Path(fullrun.OUT, "compare.json").is_file()


@pytest.mark.slow
def test_the_selection_reads_no_test_image_or_label(tmp_path, monkeypatch):
    """The selection stages on the same data but for test files of random images and labels: the
    same validation rows, the same choices."""
    monkeypatch.setattr(pipeline, "side_slots", lambda cores=None, tasks=None: (1, 1))
    data = write_dataset(tmp_path / "data", n_train=1200, n_test=200)
    fake_encoders(monkeypatch)
    chosen = {}
    for name, d in (("a", data), ("b", garbage_test_files(data, tmp_path / "garbage"))):
        run_chain(tiny(f"results/{name}", d), until="choose rounds")
        text = Path(f"results/{name}/selection/chosen.json").read_text()
        chosen[name] = json.loads(text.replace(f"results/{name}/", "results/"))  # its own encoders' paths
    assert chosen["a"] == chosen["b"]
    for csv in sorted(Path("results/a/selection").rglob(SWEEP_CSV)):
        twin = Path("results/b") / csv.relative_to("results/a")
        accuracy = [[r["val_acc"] for r in read_rows(p)] for p in (csv, twin)]
        assert accuracy[0] == accuracy[1], csv


def test_the_plan_says_what_each_stage_costs(capsys):
    from aecls.cli import main

    Path("studies").symlink_to(Path(__file__).resolve().parents[1] / "studies")
    assert main(["pipeline", "--full", "--plan"]) == 0
    out = capsys.readouterr().out
    assert "test: pseudo_fixmatch at 1000 labels, chosen settings: 3 run(s)" in out
    assert "selection: pseudo-label settings at 100 labels (8 points): 16 run(s)" in out
    assert "selection: label propagation in rounds at 1000 labels (4 points, 4 rounds): 8 run(s)" in out
    assert re.search(r"in all: 37 stages, \d+ runs, about \d+ h \d\d min on \d+ cores", out), out[-300:]
    assert not Path("artifacts").exists() and not Path("results").exists()  # nothing ran


def test_the_cheap_methods_of_each_encoder():
    assert fullrun.methods_of("vae") == fullrun.GRAPH
    assert "scratch" in fullrun.methods_of("cae") and "scratch" not in fullrun.methods_of("dae")
    assert {"frozen", "finetune"} <= set(fullrun.methods_of("barlow"))


def test_the_quickstart_says_what_the_full_run_adds():
    Path("studies").symlink_to(Path(__file__).resolve().parents[1] / "studies")
    text = pipeline.full_adds(pipeline.QUICK, "journal:optuna.journal", 1, None)
    assert "barlow" in text and all(m in text for m in ("pseudo", "fixmatch", "pseudo_fixmatch", "graph"))
    assert re.search(r"about \d+ h \d\d min on \d+ cores", text)


def test_kept_encoders_stand_for_the_study_and_fits():
    """Continued where the rows and kept encoders were committed but the study and fits were not
    (another machine), the full run neither studies nor fits again; before, it does."""
    from aecls.hpo.space import load_study

    Path("studies").symlink_to(Path(__file__).resolve().parents[1] / "studies")
    head = ("study", "export", "classifier", *(f"fit {e}" for e in pipeline.FULL.fits()))

    def pending() -> set[str]:
        stages = pipeline.plan(pipeline.FULL, load_study(pipeline.FULL.study), "journal:optuna.journal", 1,
                               None, pipeline.Stages())
        return {t.name for t in stages if t.done() is None}

    assert set(head) <= pending()
    Path(fullrun.OUT, "encoders").mkdir(parents=True)
    Path(fullrun.OUT, "encoders", "encoders.json").write_text("{}")
    assert not set(head) & pending() and {"val cae", "test cae", "choose"} <= pending()
