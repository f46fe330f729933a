"""Sweeps that resume (issue #28, item 1): each run's row is kept the moment it ends, with what
reproduces it; a stopped sweep (Ctrl-C, SIGTERM, kill -9) continues with the same command and
ends with every run exactly once; a changed or foreign sweep folder is refused, untouched."""

from __future__ import annotations

import csv
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import torch

from aecls.cli import main
from aecls.modules import AutoEncoder
from aecls.modules.encoders import export_encoder
from aecls.nets import NetConfig
from tests.helpers import interruptible

ENV = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
METHODS = "logreg_pixels,finetune"
SEEDS = 4


def _encoder(tmp_path) -> Path:
    torch.manual_seed(0)
    ae = AutoEncoder(NetConfig(latent_dim=6, n_channels=4, hidden=16))
    return export_encoder(tmp_path / "enc.pt", ae.encoder, ae.net_cfg, "cae")


def _args(enc: Path, data: Path, *extra: str, min_steps: int = 150) -> list[str]:
    return ["transfer", "sweep", "--encoder", str(enc), "--labels", "20", "--seeds", str(SEEDS),
            "--methods", METHODS, "--epochs", "1", "--min-steps", str(min_steps), "--data-dir", str(data),
            "--val-size", "50", "--out", "sw", "--no-progress", *extra]


def _rows() -> list[dict]:
    with open("sw/sweep.csv", newline="") as f:
        return list(csv.DictReader(f))


def _keys(rows: list[dict]) -> Counter:
    return Counter((r["budget"], r["seed"], r["method"]) for r in rows)


def test_each_row_is_kept_with_what_reproduces_it(tiny_data, tmp_path, capsys, monkeypatch):
    enc = _encoder(tmp_path)
    # as the `aecls` console script calls it: the row records that command line, word for word
    monkeypatch.setattr(sys, "argv", ["/somewhere/bin/aecls", *_args(enc, tiny_data, min_steps=3)])
    assert main() == 0
    rows = _rows()
    assert len(rows) == SEEDS * 2 and set(_keys(rows).values()) == {1}
    for r in rows:
        assert r["command"] == shlex.join(["aecls", *_args(enc, tiny_data, min_steps=3)])
        assert r["commit"] and r["date"][:4].isdigit() and r["torch"] == torch.__version__
        assert int(r["threads"]) >= 1 and "cores" in r["machine"] and float(r["seconds"]) >= 0
    made = json.loads(Path("sw/sweep.json").read_text())["settings"]
    assert made["min_steps"] == 3 and made["encoder"] == str(enc)
    # the same command again: nothing to run, the rows as they were
    before = Path("sw/sweep.csv").read_text()
    assert main(_args(enc, tiny_data, min_steps=3)) == 0
    out = capsys.readouterr().out
    assert f"{SEEDS * 2} of {SEEDS * 2} runs already in sw/sweep.csv; reusing them, 0 to run" in out
    assert Path("sw/sweep.csv").read_text() == before


@pytest.mark.slow
# SIGTERM reaches a sweep as Ctrl-C does (aecls.cli.main turns it into KeyboardInterrupt; a study's
# tests/test_interrupts.py checks that for a study): SIGINT stands for both.
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=lambda s: s.name)
def test_a_stopped_sweep_continues_and_ends_with_every_run_once(tiny_data, tmp_path, capsys, sig):
    enc = _encoder(tmp_path)
    with open("out.txt", "w") as out, open("err.txt", "w") as err:  # files: nobody reads pipes while we wait
        proc = subprocess.Popen([sys.executable, "-m", "aecls.cli", *_args(enc, tiny_data)], stdout=out,
                                stderr=err, env=ENV, preexec_fn=interruptible)
        deadline = time.time() + 300  # a slow, shared machine
        while time.time() < deadline and proc.poll() is None and "run 3/8" not in Path("out.txt").read_text():
            time.sleep(0.05)
        assert proc.poll() is None, Path("err.txt").read_text()[-2000:]  # stopped mid-sweep, not after
        proc.send_signal(sig)
        code = proc.wait(timeout=300)
    kept = _rows()
    assert 3 <= len(kept) < SEEDS * 2 and set(_keys(kept).values()) == {1}  # whole rows only
    stderr = Path("err.txt").read_text()
    if sig == signal.SIGKILL:
        assert code == -signal.SIGKILL
    else:
        assert code == {signal.SIGINT: 130, signal.SIGTERM: 143}[sig], stderr[-2000:]
        assert "Traceback" not in stderr, stderr[-2000:]
        (line,) = [ln for ln in stderr.strip().splitlines() if ln.startswith("aecls")]
        how = {signal.SIGINT: "interrupted (Ctrl-C)", signal.SIGTERM: "terminated (SIGTERM)"}[sig]
        assert line == (f"aecls: {how}: transfer sweep stopped: {len(kept)} of 8 runs kept in "
                        f"sw/sweep.csv; the same command runs the other {8 - len(kept)}")
    assert main(_args(enc, tiny_data)) == 0  # the same command
    assert f"{len(kept)} of 8 runs already in sw/sweep.csv; reusing them" in capsys.readouterr().out
    rows = _rows()
    assert len(rows) == 8 and set(_keys(rows).values()) == {1}
    assert rows[: len(kept)] == kept  # the kept runs were not run again


def test_a_changed_setting_is_refused_naming_it(tiny_data, tmp_path, capsys):
    enc = _encoder(tmp_path)
    assert main(_args(enc, tiny_data, min_steps=3)) == 0
    before = Path("sw/sweep.csv").read_bytes()
    capsys.readouterr()
    assert main([*_args(enc, tiny_data, min_steps=3), "--lr", "0.01"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("aecls: error: sw/sweep.csv: its rows were made with lr=0.003, this sweep has lr=0.01; "
                   "rows of different settings do not mix; nothing was overwritten (use another output "
                   "folder, or delete sw to start that sweep again) [--out]")
    assert Path("sw/sweep.csv").read_bytes() == before
    # more budgets or seeds with the same settings add runs: not a change
    assert main([*_args(enc, tiny_data, min_steps=3), "--seeds", "0,5"]) == 0  # the last --seeds counts
    assert len(_rows()) == SEEDS * 2 + 2
    assert main([*_args(enc, tiny_data, min_steps=3), "--seeds", "7,"]) == 0  # one seed, as a list
    assert sorted({r["seed"] for r in _rows()}) == ["0", "1", "2", "3", "5", "7"]


HEADER = "labels,budget,seed,method,test_acc,seconds\n"


@pytest.mark.parametrize(("rows", "settings", "message"), [
    (HEADER + "20,20,0,finetune,0.5,1\n", False,
     "sw/sweep.csv: no settings beside it in sweep.json, so its rows cannot be continued"),
    ("name,value\na,1\n", True, "sw/sweep.csv, row 1: not a sweep row (no labels"),
    (HEADER + "20,20,0,finetune,0.5,1\n20,20,1,finetune,high,1\n", True,
     "sw/sweep.csv, row 2: not a sweep row (could not convert string to float: 'high')"),
    (HEADER + "20,20,0,magic,0.5,1\n", True,
     "sw/sweep.csv, row 1: not a sweep row (method 'magic', test_acc 0.5)"),
    (HEADER + "20,20,0,finetune,0.5,1\n20,20,0,finetune,0.6,1\n", True,
     "sw/sweep.csv, row 2: finetune at budget 20, seed 0 is there twice"),
], ids=["no settings", "not a sweep", "bad number", "unknown method", "a run twice"])
def test_a_foreign_or_broken_sweep_folder_is_refused_untouched(tiny_data, tmp_path, capsys, rows, settings,
                                                               message):
    from aecls.transfer.config import SweepConfig
    from aecls.transfer.runs import settings as settings_of

    enc = _encoder(tmp_path)
    Path("sw").mkdir()
    Path("sw/sweep.csv").write_text(rows)
    if settings:  # the settings of the command below: only the rows are wrong
        made = settings_of(SweepConfig(encoder=str(enc), epochs=1, min_steps=150, val_size=50))
        Path("sw/sweep.json").write_text(json.dumps({"settings": made}))
    before = {p: p.read_bytes() for p in Path("sw").iterdir()}
    assert main(_args(enc, tiny_data)) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"aecls: error: {message}") and len(err.strip().splitlines()) == 1, err
    assert "nothing was overwritten" in err
    assert {p: p.read_bytes() for p in Path("sw").iterdir()} == before


def test_seeds_given_twice_are_refused(tiny_data, tmp_path, capsys):
    enc = _encoder(tmp_path)
    assert main([*_args(enc, tiny_data), "--seeds", "0,1,1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("aecls: error: seeds [1] given twice: each seed is one run per budget and method "
                   "[--seeds]")
    assert not Path("sw").exists()
