"""`aecls report` on a tiny synthetic run: every image exists and is not blank, tables parse, and a
partial run says what is missing instead of crashing."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from aecls.cli import main
from tests.helpers import fit, write_study


def _check_report(path: Path) -> str:
    text = path.read_text()
    for name in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text):
        img = np.asarray(Image.open(path.parent / name).convert("L"), dtype=float)
        assert img.std() > 1.0, f"{name} is blank"
    lines = text.splitlines()
    for i, line in enumerate(lines):  # a Markdown table: header, separator, rows with equal columns
        if line.startswith("|") and i + 1 < len(lines) and set(lines[i + 1]) <= set("|-: "):
            j, n = i + 2, line.count("|")
            while j < len(lines) and lines[j].startswith("|"):
                assert lines[j].count("|") == n, lines[j]
                j += 1
    return text


def test_partial_run_lists_what_is_missing(tiny_data, capsys):
    assert fit(tiny_data, "cae.yaml", "--trainer.max_epochs", "1", "--test_after_fit", "false") == 0
    assert main(["report", "--name", "partial", "--data-dir", str(tiny_data)]) == 0
    text = _check_report(Path("reports/partial/report.md"))
    assert "## Missing" in text and "vae: no checkpoint" in text and "transfer sweep: nothing" in text
    assert "latent_pca.png" in text and "reconstructions.png" in text
    # a model several sections ask for is missed once; a section with nothing to show has no heading
    missing = text.split("## Missing")[1].split("\n## ")[0].splitlines()
    assert len([m for m in missing if m.startswith("- vae:")]) == 1
    assert "## Denoising" not in text and "- dae: no checkpoint" in text
    headings = [i for i, line in enumerate(text.splitlines()) if line.startswith("## ")]
    body = text.splitlines()
    for i, j in zip(headings, [*headings[1:], len(body)], strict=True):
        assert any(line.strip() for line in body[i + 1 : j]), body[i]


def test_empty_sections_are_dropped():
    from aecls.report.build import without_empty_sections

    lines = ["", "## A", "", "a", "", "## B", "", "## C", "c", "", "## D", ""]
    assert without_empty_sections(lines) == ["", "## A", "", "a", "", "## C", "c"]


@pytest.mark.slow
def test_full_tiny_run(tiny_data, capsys):
    one = ["--trainer.max_epochs", "1", "--test_after_fit", "false"]
    for cfg in ("cae.yaml", "dae.yaml", "vae.yaml"):
        assert fit(tiny_data, cfg, *one) == 0
    study = str(write_study("rep"))
    common = [study, "--data-dir", str(tiny_data)]
    assert main(["study", "run", *common, "--n-trials", "2", "--no-progress"]) == 0
    assert main(["study", "best", *common, "--seeds", "1"]) == 0
    assert main(["transfer", "sweep", "--encoder", "artifacts/rep", "--labels", "20,all", "--seeds", "3",
                 "--epochs", "1", "--min-steps", "2", "--data-dir", str(tiny_data), "--val-size", "50",
                 "--no-progress"]) == 0
    # the same rows in two sweeps (3 seeds: a verdict): a tie on every row, and it shows up in the
    # report (one CSV given twice is refused: a copy is another sweep of the same numbers)
    shutil.copytree("artifacts/transfer", "artifacts/transfer_copy")
    assert main(["transfer", "compare", "a=artifacts/transfer", "b=artifacts/transfer_copy"]) == 0
    assert main(["report", "--study", "rep", "--data-dir", str(tiny_data)]) == 0
    text = _check_report(Path("reports/main/report.md"))
    assert "## Missing" not in text, text.split("## Missing")[-1][:500]
    assert "b ties a" in text
    for png in ("reconstructions", "denoising", "latent_pca", "latent_tsne", "interpolation", "samples",
                "study_history", "study_val_curves", "transfer", "transfer_compare"):
        assert f"({png}.png)" in text
    assert "| CAE fit of configs/cae.yaml, latent " in text and "| classifier, frozen" in text
    assert "Best trial" in text


def test_the_report_reads_the_test_metrics_its_fits_logged(tiny_data, monkeypatch):
    """A fit tests its best checkpoint and logs test/*; the report shows those numbers instead of
    running each model over the test set again (its figures use the few images they show)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from aecls.report import build

    for cfg in ("cae.yaml", "dae.yaml"):
        assert fit(tiny_data, cfg, "--trainer.max_epochs", "1") == 0
    logged = {n: EventAccumulator(f"lightning_logs/{n}/version_0").Reload() for n in ("cae", "dae")}
    mse = logged["cae"].Scalars("test/clean_mse")[-1].value
    psnr = logged["dae"].Scalars("test/psnr")[-1].value
    calls = []
    monkeypatch.setattr(build, "psnr", lambda *a: calls.append(a))  # a second pass would call it
    path = build.build_report("logged", data_dir=str(tiny_data))
    text = path.read_text()
    assert f"test MSE {mse:.5f}" in text and f"test PSNR {psnr:.2f} dB" in text
    assert calls == []
