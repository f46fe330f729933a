#!/usr/bin/env python
"""The GPU check's measurements (run by scripts/gpu_check.sh, which adds the GPU-marked tests):
a CUDA fit of configs/cae.yaml (seconds per epoch), the plain-loop vs Lightning epoch on CUDA in
each speed variant (scripts/bench.py FIT_VARIANTS) at batch 128 and 512, a study on one GPU with 1, 2,
4 and 8 workers (trials per minute, measured one after the other), and
whether a trial re-run with its seed reproduces its val/loss on the GPU. Prints a Markdown table
and writes it to OUT/gpu_check.md."""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from bench import FIT_VARIANTS, bench_fit, bench_study

GPU_VARIANTS = ["before", "default", "channels_last", "bf16", "channels_last_bf16"]


def cli_fit(epochs: int, out: Path, data_dir: str | None) -> dict:
    """`aecls fit --config configs/cae.yaml` on one GPU, as a user runs it; epoch seconds parsed
    from aecls.modules.speed.EpochTimes."""
    cmd = [sys.executable, "-m", "aecls.cli", "fit", "--config", "configs/cae.yaml",
           "--trainer.accelerator", "gpu", "--trainer.devices", "1", "--trainer.max_epochs", str(epochs),
           "--trainer.enable_progress_bar", "false", "--trainer.callbacks+=aecls.modules.speed.EpochTimes",
           "--trainer.logger.init_args.save_dir", str(out / "lightning_logs")]
    if data_dir:
        cmd += ["--data.data_dir", data_dir]
    start = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    (out / "fit.log").write_text(r.stdout + r.stderr)
    if r.returncode != 0:
        raise SystemExit(f"aecls fit failed (exit {r.returncode}); see {out / 'fit.log'}")
    seconds = json.loads(re.search(r"epoch seconds: (\[.*\])", r.stdout).group(1))
    mse = re.search(r"test/mse\s+([0-9.e-]+)", r.stdout)
    return {"command": " ".join(cmd[1:]), "epoch_seconds": seconds, "wall": wall,
            "test_mse": float(mse.group(1)) if mse else None}


def reproduce(study_file: str, data_dir: str | None, deterministic: bool = False) -> dict:
    """Run a 2-trial study on the GPU, re-run its best trial with its own seed: identical val/loss?
    With `deterministic`, the trials use Lightning's `deterministic=True` (deterministic kernels)."""
    import os

    from aecls.hpo.best import rerun_best
    from aecls.hpo.run import run_study
    from aecls.hpo.space import load_study

    tmp, cwd = Path(tempfile.mkdtemp(prefix="aecls_gpu_repro_")), os.getcwd()
    try:
        os.chdir(tmp)
        spec = load_study(Path(cwd) / study_file)
        spec.trainer["deterministic"] = deterministic
        study = run_study(spec, 2, "sqlite:///r.db", data_dir=data_dir, progress=False)
        info = rerun_best(spec, study, seeds=1, data_dir=data_dir)
    finally:
        os.chdir(cwd)
    return info["reproduced"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", default="gpu_check")
    p.add_argument("--data-dir")
    p.add_argument("--fit-epochs", type=int, default=5)
    p.add_argument("--channels", type=int, nargs="+", default=[16, 32])
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[128, 512])
    p.add_argument("--variants", nargs="+", default=GPU_VARIANTS, choices=list(FIT_VARIANTS))
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4, 8])
    p.add_argument("--study", default="studies/quickstart.yaml")
    p.add_argument("--study-trials", type=int, default=6)
    p.add_argument("--study-epochs", type=int, default=3)
    p.add_argument("--sections", nargs="+", default=["fit", "bench", "study", "reproduce"],
                   choices=["fit", "bench", "study", "reproduce"])
    a = p.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("gpu_check: no CUDA device")
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    gpu = torch.cuda.get_device_name(0)
    import lightning
    import optuna

    lines = [f"- date: {datetime.date.today()}; command: `bash scripts/gpu_check.sh`",
             f"- machine: {gpu}, {torch.cuda.device_count()} GPU, {platform.machine()}, "
             f"{torch.get_num_threads()} torch threads, python {platform.python_version()}, "
             f"torch {torch.__version__}, lightning {lightning.__version__}, optuna {optuna.__version__}", "",
             "| measurement | aecls | reference | ratio |", "|---|---:|---:|---:|"]

    def row(*cells: str) -> None:
        lines.append("| " + " | ".join(cells) + " |")
        print(lines[-1], flush=True)

    if "fit" in a.sections:
        f = cli_fit(a.fit_epochs, out, a.data_dir)
        steady = statistics.median(f["epoch_seconds"][1:] or f["epoch_seconds"])
        row(f"`aecls fit --config configs/cae.yaml` on CUDA, s/epoch (median of epochs 2-{a.fit_epochs}; "
            f"first {f['epoch_seconds'][0]:.2f})", f"{steady:.2f}", f"whole command {f['wall']:.0f} s, "
            f"test MSE {f['test_mse']}", "")
    for c in a.channels if "bench" in a.sections else []:
        for b in a.batch_sizes:
            r = bench_fit(c, rounds=2, data_dir=a.data_dir, device="cuda", batch_size=b, variants=a.variants)
            for v in a.variants:
                row(f"CAE epoch c={c}, batch {b} on CUDA, Lightning `{v}`, images/s",
                    f"{r[f'lightning_{v}']:,.0f}", f"{r['plain_loop']:,.0f} (plain loop)",
                    f"{r[f'ratio_{v}']:.2f}")
    if "study" in a.sections:
        runs = {w: bench_study(a.study, a.study_trials, a.study_epochs, "none", w, a.data_dir)
                for w in a.workers}
        for w, r in runs.items():
            row(f"study {Path(a.study).stem} ({a.study_trials} trials x {a.study_epochs} epochs, "
                f"no pruning), {w} worker(s) on one GPU, trials/min", f"{r['trials_per_min']:.2f}",
                f"{runs[a.workers[0]]['trials_per_min']:.2f} ({a.workers[0]} worker(s))",
                f"{r['trials_per_min'] / runs[a.workers[0]]['trials_per_min']:.2f}")
    for deterministic in (False, True) if "reproduce" in a.sections else ():
        rep = reproduce(a.study, a.data_dir, deterministic)
        row(f"best trial re-run with its own seed on CUDA, val/loss (deterministic={deterministic})",
            f"{rep['rerun']:.6g} ({'identical' if rep['identical'] else 'differs'})",
            f"{rep['trial']:.6g} (trial)", f"{rep['rerun'] / rep['trial']:.6f}")
    (out / "gpu_check.md").write_text("\n".join(lines) + "\n")
    print(f"written: {out / 'gpu_check.md'}")


if __name__ == "__main__":
    main()
