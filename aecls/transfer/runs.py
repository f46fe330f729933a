"""A sweep's runs on disk, as data: one row of sweep.csv per finished run, written the moment it
ends, so a stopped sweep (Ctrl-C, `kill -9`, a closed laptop) loses at most the run in progress
and the same command continues where it stopped.

Why by hand: a CSV that other tools read (pandas, a spreadsheet, `aecls transfer compare`) is the
product here, and neither Lightning nor Optuna keeps rows of this shape. Each write replaces the
whole file through a temporary beside it (`os.replace` is atomic), so a kill never leaves half a
row. Each row carries what reproduces it (`provenance`); sweep.json beside it holds the settings
the rows were made with, so a changed command is refused instead of mixing rows.
"""

from __future__ import annotations

import csv
import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
from dataclasses import MISSING, asdict, fields
from pathlib import Path

from aecls.core.errors import AeclsError
from aecls.core.paths import ENCODER_FILE, SHA256, SWEEP_CSV, SWEEP_JSON, sha256_of
from aecls.transfer.config import SCORES, SweepConfig, score_column
from aecls.transfer.methods import methods

# One row: the run (budget asked, labels it had, seed, method), its accuracy (in a column named for
# the images it was scored on: config.score_column) and what reproduces it.
RUN = ("labels", "budget", "seed", "method")
STAMP = ("seconds", "command", "commit", "date", "machine", "threads", "torch")


def fields_for(score: str) -> tuple[str, ...]:
    """The leading columns of a sweep.csv whose runs are scored on `score` ("test" or "val")."""
    return (*RUN, score_column(score), *STAMP)


def score_of(path: str | Path) -> str:
    """What the rows of the sweep CSV `path` are scored on: the score its
    settings record (the JSON beside it), else the one its accuracy column names. A sweep written
    before the column was named for its score calls a validation score test_acc; its settings say
    val, and they win. A val_acc column beside settings that say test is no sweep aecls wrote."""
    with open(path, newline="") as f:
        header = next(csv.reader(f), [])
    columns = [s for s in SCORES if score_column(s) in header]
    made = recorded(path)
    if len(columns) != 1 or (made is not None and columns == ["val"] and made.get("score") != "val"):
        raise AeclsError(f"{path} is not a transfer sweep CSV (want one accuracy column, test_acc or "
                         f"val_acc, agreeing with the settings beside it; found {columns or 'none'})")
    return made["score"] if made is not None and made.get("score") in SCORES else columns[0]


def accuracy(row: dict[str, str]) -> str:
    """A row's accuracy as written, whichever images scored it (score_of says which)."""
    return row.get(score_column("val")) or row.get(score_column("test")) or ""
# The settings that do not change a run's result: which runs there are, where they go, where the
# data is read from. Every other field of SweepConfig must match to add rows to a sweep.
NOT_SETTINGS = ("labels", "seeds", "methods", "out", "data_dir")


def key(budget: int | str | None, seed: int | str, method: str) -> tuple[str, int, str]:
    """What identifies a run in a sweep: (budget as written, "all" for the whole split, seed, method)."""
    return ("all" if budget in (None, "all") else str(int(budget)), int(seed), method)


def settings(cfg: SweepConfig) -> dict:
    """The settings that make a run what it is (the encoder among them)."""
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()
            if k not in NOT_SETTINGS}


def sweep_settings() -> list[str]:
    """The names of the settings a sweep records (SweepConfig's fields but NOT_SETTINGS)."""
    return [f.name for f in fields(SweepConfig) if f.name not in NOT_SETTINGS]


def _defaults() -> dict:
    """Each setting's default (the settings with one): what a sweep recorded before the setting
    existed ran with, since a new setting's default keeps the runs as they were."""
    out = {}
    for f in fields(SweepConfig):
        default = f.default_factory() if f.default_factory is not MISSING else f.default
        if f.name not in NOT_SETTINGS and default is not MISSING:
            out[f.name] = list(default) if isinstance(default, tuple) else default
    return out


def record_of(csv_path: str | Path) -> dict:
    """The JSON beside a sweep CSV (same stem: sweep.json for sweep.csv), or {} where there is none."""
    try:
        made = json.loads(Path(csv_path).with_suffix(".json").read_text())
    except (OSError, ValueError):
        return {}
    return made if isinstance(made, dict) else {}


def recorded(csv_path: str | Path) -> dict | None:
    """The settings a sweep CSV's rows were made with: `settings` of the JSON beside it with the
    same stem (sweep.json for sweep.csv; NAME.json for a CSV copied as NAME.csv into results/),
    settings added to aecls since at their defaults; None where none was recorded."""
    made = record_of(csv_path).get("settings")
    return {**_defaults(), **made} if isinstance(made, dict) else None


def _commit() -> str:
    """The aecls checkout's commit ("+changes" if it differs from it), or "unknown" outside git."""
    here = Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short=10", "HEAD"], cwd=here, capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("+changes" if dirty else "")


def provenance() -> dict[str, str]:
    """What every row of this process records: the command, the code, the date, the machine."""
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return {"command": shlex.join(["aecls", *sys.argv[1:]]) if Path(sys.argv[0]).name == "aecls"
            else shlex.join(sys.argv),
            "commit": _commit(), "date": datetime.datetime.now().isoformat(timespec="seconds"),
            "machine": f"{platform.machine()} {os.cpu_count()} cores, {gpu}",
            "threads": str(torch.get_num_threads()), "torch": torch.__version__}


def read_rows(path: str | Path) -> list[dict[str, str]]:
    """The rows of a sweep CSV as written (strings by column): the one reader of the format, for
    the sweep that continues it, `transfer compare`, the report and `aecls results`. A file that is
    not CSV raises csv.Error or UnicodeDecodeError, for the caller to say what it was reading."""
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _fail(path: Path, row: int | None, what: str) -> AeclsError:
    where = f"{path}, row {row}" if row is not None else str(path)
    return AeclsError(f"{where}: {what}; nothing was overwritten (use another output folder, or delete "
                      f"{path.parent} to start that sweep again)", setting="out")


def _checked(path: Path, n: int, r: dict, column: str) -> dict:
    """Row `n` of `path`, checked: every field there (its accuracy in `column`), numbers that
    parse, a known method."""
    missing = [f for f in (*RUN, column) if not r.get(f)]
    if missing:
        raise _fail(path, n, f"not a sweep row (no {', '.join(missing)})")
    try:
        int(r["labels"]), int(r["seed"]), key(r["budget"], r["seed"], r["method"])
        acc = float(r[column])
    except ValueError as e:
        raise _fail(path, n, f"not a sweep row ({e})") from None
    if r["method"] not in methods() or not 0 <= acc <= 1:
        raise _fail(path, n, f"not a sweep row (method {r['method']!r}, {column} {r[column]})")
    return r


def load(out: Path, cfg: SweepConfig) -> list[dict]:
    """The rows a sweep in `out` already has, if it was made with `cfg`'s settings; none if there is
    no sweep there. A CSV that is not a sweep's, or rows from other settings: a user error naming
    the file (and the row, or the setting that differs)."""
    path = out / SWEEP_CSV
    if not path.exists():
        return []
    made = recorded(path)  # sweep.json, beside it
    if made is None:
        raise _fail(path, None, f"no settings beside it in {SWEEP_JSON}, so its rows cannot be "
                                "continued (a sweep written before aecls recorded them, or not a sweep)")
    now = settings(cfg)
    changed = [k for k in sorted(set(now) | set(made)) if now.get(k) != made.get(k)]
    if changed:
        k = changed[0]
        raise _fail(path, None, f"its rows were made with {k}={made.get(k)!r}, this sweep has "
                                f"{k}={now.get(k)!r}; rows of different settings do not mix")
    column = score_column(cfg.score)
    try:
        read = read_rows(path)
    except (csv.Error, UnicodeDecodeError) as e:
        raise _fail(path, None, f"not a readable CSV ({e})") from None
    for r in read:  # a validation sweep from before the column was named for its score
        if column not in r and "test_acc" in r and cfg.score == "val":
            r[column] = r.pop("test_acc")
    rows = [_checked(path, n, r, column) for n, r in enumerate(read, 1)]
    seen: set[tuple] = set()
    for n, r in enumerate(rows, 1):
        k = key(r["budget"], r["seed"], r["method"])
        if k in seen:
            raise _fail(path, n, f"{k[2]} at budget {k[0]}, seed {k[1]} is there twice")
        seen.add(k)
    return rows


def encoder_files(cfg: SweepConfig) -> list[Path]:
    """The files a sweep's runs read weights from: its encoder's and each of `graph_codes`' (a study
    export's folder stands for its ENCODER_FILE)."""
    paths = [Path(p) for p in dict.fromkeys([cfg.encoder, *(cfg.graph_codes or [])])]
    return [p / ENCODER_FILE if p.is_dir() else p for p in paths]


def hashes(cfg: SweepConfig) -> dict[str, str]:
    """{encoder file: sha256} of the files the runs read (encoder_files)."""
    return {str(p): sha256_of(p) for p in encoder_files(cfg)}


def changed_encoders(record: dict) -> list[str]:
    """The encoder files a sweep.json names (SHA256) that are here with other bytes: its rows were
    not made with them. A file that is not here is not checked (the rows name it; it is not kept)."""
    return [f"{p} (sha256 {want[:12]}..., now {sha256_of(p)[:12]}...)"
            for p, want in record.get(SHA256, {}).items() if Path(p).is_file() and sha256_of(p) != want]


def start(out: Path, cfg: SweepConfig, encoder: dict) -> None:
    """Record the settings, which encoder and the sha256 of every encoder file the runs read,
    before the first run writes a row. A sweep continued with an encoder file whose bytes changed
    since (a refit at the same path) is refused: its rows would mix two encoders."""
    out.mkdir(parents=True, exist_ok=True)
    now = hashes(cfg)
    changed = [p for p, h in record_of(out / SWEEP_CSV).get(SHA256, {}).items() if now.get(p, h) != h]
    if changed and (out / SWEEP_CSV).exists():
        raise _fail(out / SWEEP_CSV, None, f"its rows were made with other bytes in {', '.join(changed)} "
                                           "(sha256 in sweep.json); rows of two encoders do not mix")
    write_atomic(out / SWEEP_JSON, json.dumps({**encoder, SHA256: now, "settings": settings(cfg)}, indent=2))


def write_atomic(path: Path, text: str) -> None:
    """`text` to `path` in one step: a reader or a kill sees the old file or the new one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", newline="") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def save(rows: list[dict], path: Path, fields: tuple[str, ...]) -> None:
    """All rows to `path` as CSV, atomically (`fields` first, the rows' other columns after, in
    the order they first appear)."""
    import io

    names = [*fields, *dict.fromkeys(k for r in rows for k in r if k not in fields)]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=names, restval="")
    w.writeheader()
    w.writerows(rows)
    write_atomic(path, buf.getvalue())
