"""Helpers the test files share: tiny study files, fits of the real configs on tiny data."""

from __future__ import annotations

from pathlib import Path

import yaml
from optuna.trial import TrialState

from aecls.cli import main
from aecls.core.paths import FIT_BEST_GLOB

SPACE = {
    "latent_dim": {"type": "int", "low": 2, "high": 8, "log": True},
    "n_channels": {"type": "categorical", "choices": [2, 4]},
    "optimizer": {"type": "categorical", "choices": ["adam", "rmsprop"]},
    "lr": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True},
    "hidden": 16,
}


def interruptible() -> None:
    """Popen's preexec_fn for a child a test stops with Ctrl-C (SIGINT): SIGINT as in a terminal. A
    test run started in the background (`cmd &`, nohup, some CI runners) ignores SIGINT and its
    children inherit that; Python then installs no KeyboardInterrupt handler and the Ctrl-C does
    nothing."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def write_study(name="tiny", epochs=2, **over) -> Path:
    spec = {"name": name, "model": "cae", "epochs": epochs, "n_trials": 2, "seed": 0,
            "data": {"val_size": 50, "batch_size": 64}, "space": dict(SPACE), **over}
    path = Path(f"{name}.yaml")
    path.write_text(yaml.safe_dump(spec))
    return path


def record_settings(csv_path: Path, **changed) -> Path:
    """The settings JSON beside a hand-made sweep CSV (NAME.json for NAME.csv), as a sweep records
    them: SweepConfig's defaults with `changed` on top."""
    import json

    from aecls.transfer.config import SweepConfig
    from aecls.transfer.runs import settings

    made = {**settings(SweepConfig(encoder=str(csv_path.parent))), **changed}
    path = csv_path.with_suffix(".json")
    path.write_text(json.dumps({"settings": made}))
    return path


def write_sweep(path: Path, acc: dict[tuple[int, str], list[float]], **changed) -> Path:
    """A sweep folder written by hand, with its recorded settings (defaults, `changed` on top; its
    accuracy column named for `changed`'s score, as a sweep names it)."""
    import csv

    from aecls.transfer.config import score_column

    path.mkdir(parents=True)
    record_settings(path / "sweep.csv", **changed)
    column = score_column(changed.get("score", "test"))
    with open(path / "sweep.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["labels", "budget", "seed", "method", column, "seconds"])
        w.writeheader()
        for (labels, method), values in acc.items():
            for seed, a in enumerate(values):
                w.writerow({"labels": labels, "budget": labels, "seed": seed, "method": method,
                            column: a, "seconds": 1.0})
    return path


def finished(study):
    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))


CONFIGS = Path(__file__).resolve().parents[1] / "configs"
TINY = ["--data.val_size", "50", "--data.batch_size", "32", "--model.init_args.net.n_channels", "4"]


def fit(tiny_data, config="cae.yaml", *extra) -> int:
    return main(["fit", "--config", str(CONFIGS / config), "--data.data_dir", str(tiny_data), *TINY,
                 "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
                 *extra])


def one_line_error(capsys) -> str:
    """What the CLI printed on stderr, checked to be one `aecls: error:` line and no traceback."""
    err = capsys.readouterr().err.strip()
    assert err.startswith("aecls: error: ") and "\n" not in err and "Traceback" not in err, err
    return err


def checkpoints(pattern=FIT_BEST_GLOB):
    """Every fit's checkpoints matching `pattern` (paths.FIT_BEST_GLOB or FIT_LAST_GLOB)."""
    return sorted(Path("lightning_logs").glob(f"*/{pattern}"))


def _join(barrier, url: str, study_file: str, results) -> None:
    """One of several processes released together into open_study (a host of a job script)."""
    from aecls.hpo.run import open_study
    from aecls.hpo.space import load_study

    spec = load_study(study_file)
    barrier.wait()
    try:
        results.put(("ok", open_study(spec, url)._study_id))
    except Exception as e:  # reported to the test, which names it
        results.put(("error", f"{type(e).__name__}: {e}"))


def join_together(url: str, study_file: str, n: int = 8) -> list[tuple[str, object]]:
    """Start `n` processes that open the same study on `url` at the same moment; their results.
    Forked, not spawned: each child would otherwise import torch and Lightning again (seconds each,
    eight at once on two cores) only to open a study; the children use no torch, so the threads a
    fork does not copy are never waited on. The race is in the storage's first writes, which a fork
    reaches all the same."""
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    barrier, results = ctx.Barrier(n), ctx.Queue()
    procs = [ctx.Process(target=_join, args=(barrier, url, study_file, results)) for _ in range(n)]
    for p in procs:
        p.start()
    out = [results.get(timeout=300) for _ in procs]
    for p in procs:
        p.join()
    return out
