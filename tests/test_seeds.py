"""Seeds and verdicts: no verdict from one seed, no zero spread for one value, no zero seeds."""

from __future__ import annotations

import csv
from pathlib import Path

from aecls.cli import main
from tests.helpers import one_line_error, record_settings, write_study


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
    assert "--seeds must be >= 1, got 0" in one_line_error(capsys)


def test_one_seed_shows_n_1_not_a_zero_spread():
    from aecls.evaluation.stats import mean_sd, spread

    assert spread(0.01027, 0.0, 1) == "0.01027 (n = 1)"
    assert mean_sd([0.5, 0.7], scale=100) == "60.00 ± 14.14"  # the sample sd
    assert mean_sd([0.723], scale=100) == "72.30 (n = 1)"


def test_study_best_with_one_seed_prints_no_spread(tiny_data, capsys):
    path = write_study("one", epochs=1, n_trials=1)
    assert main(["study", "run", str(path), "--data-dir", str(tiny_data), "--no-progress"]) == 0
    assert main(["study", "best", str(path), "--data-dir", str(tiny_data), "--seeds", "1"]) == 0
    out = capsys.readouterr().out
    assert "±" not in out.split("re-trained")[1] and "(n = 1)" in out
