"""The whole pipeline, end to end, on synthetic data at a tiny scale: every stage runs, the
pretexts are compared, and the report has the comparison section and nothing missing."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import pytest

from aecls import pipeline
from tests.conftest import write_dataset
from tests.helpers import CONFIGS, write_study


@pytest.mark.slow
def test_the_pipeline_runs_every_stage_and_compares_the_pretexts(tmp_path, monkeypatch, capsys):
    # the configs' own validation split (5,000 images) and a 1,000-image training split
    data = write_dataset(tmp_path / "data", n_train=6000, n_test=200)
    Path("configs").symlink_to(CONFIGS)
    study = write_study("tiny", epochs=1, data={"val_size": 5000, "batch_size": 128})
    tiny = replace(pipeline.QUICK, study=str(study), labels=(20,), sweep_epochs=1, sweep_min_steps=3)
    monkeypatch.setattr(pipeline, "QUICK", tiny)  # the quickstart's stages, on tiny data
    report = pipeline.run_pipeline(data_dir=str(data))
    out = capsys.readouterr().out
    assert "pipeline done" in out
    assert all(f"transfer sweep of the {p} encoder" in out for p in tiny.pretexts())
    for pretext in tiny.pretexts():
        assert Path(f"artifacts/transfer_{pretext}/sweep.csv").is_file()
    compared = Path("artifacts/transfer_compare/compare.md").read_text()
    assert f"| labels | method | cae (tiny) | {' | '.join(tiny.pretexts())} |" in compared
    text = report.read_text()
    assert "## Few labels: which pretraining, which method" in text and "### Side by side" in text
    assert "## Missing" not in text, text.split("## Missing")[1][:500]
    # each Baselines row says what it is (#31 item 7): the config's fit, the study's trial
    baselines = text.split("## Baselines")[1].split("\n## ")[0]
    assert "| CAE fit of configs/cae.yaml, latent 14, epoch 1 (`" in baselines
    assert "classifier, frozen (20 labels, encoder: study tiny trial " in baselines
    assert (report.parent / "transfer_compare.png").stat().st_size > 5000
    # every stage timed (#27): in the output, in the report's table, as data
    assert f"Quick scale: {tiny.describe().split(': ', 1)[1]}." in text  # the report says what was trained
    # study, export, sweep, classifier, compare, report; a fit per family; a sweep per pretext
    n = 6 + len(tiny.fits()) + len(tiny.pretexts())
    assert "## How long each stage took" in text and f"| 1/{n} study tiny: 2 trials" in text
    times = json.loads(Path("artifacts/pipeline.json").read_text())
    assert {r["stage"].split(" ", 1)[1] for r in times["stages"]} >= {
        "re-run the best trial, export its encoder", "fit cae", "transfer sweep", "compare the encoders",
        "frozen-encoder classifier + test report", "report"}
    assert all(r["seconds"] >= 0 for r in times["stages"]) and times["machine"]["cores"]
    # a rerun reuses every finished stage and says what it reused
    pipeline.run_pipeline(data_dir=str(data))
    out = capsys.readouterr().out
    assert "export its encoder: already done; reusing artifacts/tiny/best.json" in out
    assert out.count("already done; reusing") == 3 + len(tiny.fits()) + len(tiny.pretexts())


def test_a_second_pipeline_in_the_folder_is_refused(capsys):
    from aecls.cli import main

    with pipeline.folder_lock():
        assert main(["pipeline"]) == 2
    err = capsys.readouterr().err
    assert f"this folder is in use by another aecls pipeline (pid {os.getpid()})" in err
    assert not Path("artifacts").exists() and not Path("lightning_logs").exists()


def _note(name: str) -> None:
    Path("ran.txt").open("a").write(f"{name}\n")


def test_stages_run_in_the_order_their_inputs_allow(monkeypatch, capsys):
    """Issue #38: the pipeline is a list of stages with what they read and leave; order, reuse and
    the groups that run side by side follow from it."""
    monkeypatch.setattr(pipeline, "side_slots", lambda cores=None, tasks=None: (1, 1))  # in this process
    Path("b.done").write_text("")
    S = pipeline.Stage
    stages = [S("c", "c", _note, ("c",), needs=("a", "b")),
              S("a", "a", _note, ("a",), alone=True),
              S("b", "b", _note, ("b",), done=lambda: Path("b.done")),  # finished earlier: reused
              S("d", "d", _note, ("d",), needs=("a",))]
    timer = pipeline.Stages()
    pipeline.run_stages(stages, timer, Path("logs"))
    assert Path("ran.txt").read_text().split() == ["a", "d", "c"]  # a alone first; b reused
    assert [r["stage"] for r in timer.rows] == ["2/4 a", "3/4 b", "4/4 d", "1/4 c"]
    assert "3/4 b: already done; reusing b.done" in capsys.readouterr().out
    with pytest.raises(ValueError, match="needs \\['x'\\]"):
        pipeline.run_stages([S("e", "e", _note, needs=("x",))], timer, Path("logs"))
    with pytest.raises(ValueError, match="wait on each other"):
        pipeline.run_stages([S("f", "f", _note, needs=("g",)), S("g", "g", _note, needs=("f",))], timer,
                            Path("logs"))


@pytest.mark.parametrize(("cores", "tasks", "slots"), [
    (1, 5, (1, 1)),    # one core: one process, the stages in turn
    (2, 5, (4, 1)),    # more stages than cores: one thread each, up to MAX_SIDE processes
    (2, 3, (3, 1)),    # three sweeps on two cores end together, not two then one
    (16, 2, (2, 8)),   # few stages, many cores: the cores split between them
    (4, None, (4, 1)),  # the study's workers: one per core
])
def test_side_slots_split_the_cores(cores, tasks, slots):
    assert pipeline.side_slots(cores, tasks) == slots


@pytest.mark.slow
def test_a_failed_side_stage_stops_the_others(monkeypatch):
    """Side stages run in processes, each waited for as it ends (no polling); the first to fail
    stops the rest at once instead of waiting for them."""
    import time

    from aecls.core.errors import AeclsError, check

    monkeypatch.setattr(pipeline, "side_slots", lambda cores=None, tasks=None: (2, 1))
    S = pipeline.Stage
    tasks = [("1/2 slow", S("slow", "slow", time.sleep, (60,))),
             ("2/2 fails", S("fails", "fails", check, (False, "no data here")))]
    start = time.perf_counter()
    with pytest.raises(AeclsError, match="pipeline stage 2/2 fails: no data here"):
        pipeline.run_beside(pipeline.Stages(), tasks, Path("logs"))
    assert time.perf_counter() - start < 30


STUBBORN_STAGE = '''
import os, signal, sys, time
from pathlib import Path


def stubborn(marks):
    """A stage that, as a Lightning fit does, traps SIGTERM and goes on (here: for good)."""
    signal.signal(signal.SIGTERM, lambda *a: None)
    Path(marks, str(os.getpid())).touch()
    time.sleep(300)
'''

STOP_A_WAVE = '''
import signal, sys
from pathlib import Path
from aecls import pipeline
from stubborn_stage import stubborn


def stop(*a):
    raise KeyboardInterrupt


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, stop)  # as aecls.cli.main does
    pipeline.side_slots = lambda cores=None, tasks=None: (2, 1)
    pipeline.STOP_GRACE_S = 2.0
    S = pipeline.Stage
    tasks = [(f"{k}/3 s{k}", S(f"s{k}", f"s{k}", stubborn, (sys.argv[1],))) for k in (1, 2, 3)]
    try:
        pipeline.run_beside(pipeline.Stages(), tasks, Path("logs"))
    except KeyboardInterrupt:
        sys.exit(143)
'''


@pytest.mark.slow
def test_a_stop_ends_a_wave_whose_stages_trap_sigterm(tmp_path):
    """SIGTERM to the pipeline during a wave of side stages ends every side process within the
    grace, even those that trap SIGTERM and go on (as a Lightning fit does), and starts no queued
    stage: before, the pipeline then waited for a whole queued FixMatch stage."""
    import signal
    import subprocess
    import sys
    import time

    (tmp_path / "stubborn_stage.py").write_text(STUBBORN_STAGE)
    (tmp_path / "stop_a_wave.py").write_text(STOP_A_WAVE)
    marks = tmp_path / "marks"
    marks.mkdir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path),
                                                        os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, str(tmp_path / "stop_a_wave.py"), str(marks)], cwd=tmp_path,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    deadline = time.monotonic() + 120
    while len(list(marks.iterdir())) < 2:  # both processes are in their stage
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[0]
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    try:
        out, _ = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # its side processes too
        pytest.fail("the pipeline did not end within 60 s of SIGTERM")
    assert proc.returncode == 143, out
    pids = [int(p.name) for p in marks.iterdir()]
    assert len(pids) == 2, "a queued stage started after the stop"
    time.sleep(0.5)
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
