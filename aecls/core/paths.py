"""Where aecls reads and writes by default: one home for each default directory, the default
study storage, and where the model configs (configs/<name>.yaml) are found."""

from __future__ import annotations

import hashlib
from pathlib import Path

from aecls.core.errors import AeclsError

LOG_DIR = "lightning_logs"  # TensorBoard runs and checkpoints: LOG_DIR/<name>/version_N
ARTIFACTS = "artifacts"  # study outputs (ARTIFACTS/<study>/), transfer sweeps (ARTIFACTS/transfer)
TRANSFER_OUT = f"{ARTIFACTS}/transfer"
COMPARE_OUT = f"{ARTIFACTS}/transfer_compare"
LABELLING_OUT = f"{ARTIFACTS}/transfer_labelling"
RESULTS_DIR = "results"  # committed rows (results/<comparison>/), checked by `aecls results`
REPORTS = "reports"  # REPORTS/<name>/report.md
DEFAULT_STORAGE = "sqlite:///optuna.db"  # one file in the project, one writer at a time
PARALLEL_STORAGE = "journal:optuna.journal"  # the default with --workers > 1: SQLite is not for them
SERVER_ARTIFACTS = "optuna_artifacts"  # trial artifacts of a server storage (file storages: beside it)
# Files one stage writes and another reads, named here once (each read back as data: CSV, JSON).
ENCODER_FILE = "best_encoder.pt"  # `study best` -> sweeps, classifiers (ARTIFACTS/<study>/)
BEST_FILE = "best.json"  # `study best` -> report, pipeline
STUDY_FILE = "study.json"  # `study run` / `study plots`: the study's summary -> the stale-export check
SWEEP_CSV, SWEEP_MD, SWEEP_PNG = "sweep.csv", "sweep.md", "sweep.png"  # a sweep -> compare, report
SWEEP_JSON = "sweep.json"  # a sweep's encoder (path, family, latent size) -> report
CURVES_CSV, CURVES_PNG = "fixmatch_curves.csv", "fixmatch_curves.png"  # a sweep's FixMatch diagnostic
ROUNDS_CSV, ROUNDS_PNG = "rounds.csv", "rounds.png"  # a sweep's label propagation in rounds, per round
# `aecls transfer labelling`: graph pseudo-labels scored on validation images
LABELLING_CSV, LABELLING_MD, LABELLING_PNG = "labelling.csv", "labelling.md", "labelling.png"
COMPARE_JSON, COMPARE_MD, COMPARE_PNG = "compare.json", "compare.md", "compare.png"  # compare -> report
PIPELINE_JSON = "pipeline.json"  # the pipeline's stage times and machine (ARTIFACTS/) -> report
PIPELINE_LOCK = ".aecls_pipeline.lock"  # one pipeline per folder: the running one's pid
# A config fit's checkpoints, under LOG_DIR/<config>/version_N/checkpoints/: the best epoch's (the
# ModelCheckpoint filename, then the glob that finds it: report, pipeline) and the last epoch's
# (what `aecls fit --ckpt_path last` resumes).
FIT_BEST = "best-{epoch}"
FIT_BEST_GLOB = "version_*/checkpoints/best-*.ckpt"
FIT_LAST_GLOB = "version_*/checkpoints/last.ckpt"
SHA256 = "sha256"  # a sweep.json's {encoder file: its sha256}: what `aecls results` verifies


def sha256_of(path: str | Path) -> str:
    """The hex sha256 of a file's bytes: how a row's encoder file is named in its settings."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


# aecls's commands take the IDX directory as --data-dir, and as LightningCLI spells it for fits.
DATA_DIR_ALIASES = ("--data-dir", "--data.data_dir")

# The repository's configs/ (an editable install runs from the checkout).
REPO_CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def find_config(name_or_path: str | Path) -> Path:
    """A model config by path, or by name: ./configs/NAME.yaml, then the repository's."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml"):
        candidates = [path]
    else:
        candidates = [Path("configs") / f"{path}.yaml", REPO_CONFIGS / f"{path}.yaml"]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise AeclsError(f"model config not found: {' or '.join(map(str, candidates))}")


CONFIG_KEYS = ("model", "data", "trainer", "seed_everything")  # what a model config may hold


def read_config(name_or_path: str | Path, model: bool = True) -> dict:
    """A model config (see find_config) as `aecls fit --config` reads it, the one reader of that
    format: a mapping with a `model:` section (unless not `model`: `aecls test --config` reads
    a file with only `data:`) and only CONFIG_KEYS, its `data:` flat (LightningCLI's
    `data: {init_args: ...}` form too). A file that is not one is a user error naming it."""
    import yaml

    path = find_config(name_or_path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise AeclsError(f"{path}: not valid YAML ({e})") from e
    if not isinstance(raw, dict) or (model and not isinstance(raw.get("model"), dict)):
        raise AeclsError(f"{path}: not a model config with a `model:` section")
    unknown = sorted(set(raw) - set(CONFIG_KEYS))
    if unknown:
        raise AeclsError(f"{path}: unknown key(s) {unknown}; known: {', '.join(CONFIG_KEYS)}")
    data = dict(raw.get("data") or {})
    return {**raw, "data": dict(data.get("init_args") or {}) if "init_args" in data else data}


def tool_command(name: str, *args: str | Path) -> str:
    """A command line to print: a tool installed beside this Python (the venv's bin/:
    optuna-dashboard, tensorboard) as an absolute path that works from any folder, else its name
    on PATH, then `args`; every part shell-quoted, so a path with a space pastes as one."""
    import shlex
    import shutil
    import sys

    here = Path(sys.executable).parent / name
    tool = str(here) if here.is_file() else (shutil.which(name) or name)
    return shlex.join([tool, *map(str, args)])
