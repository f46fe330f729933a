#!/usr/bin/env python
"""aecls speed benchmarks, measured side by side in one run: data path, one CAE epoch (plain loop
vs Lightning in each speed variant), study throughput before and after the speed options (and with
2 workers), peak memory. --write puts the table in BENCHMARKS.md. Run nothing else meanwhile:
these machines are shared and noisy."""

import argparse
import datetime
import platform
import sys
from pathlib import Path

import torch

from bench import FIT_VARIANTS, bench_data, bench_fit, bench_study, peak_rss_mib

# Every variant at the default width; before/default at the others.
ALL_VARIANTS = list(FIT_VARIANTS)
SHORT_VARIANTS = ["before", "default"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data-dir")
    p.add_argument("--channels", type=int, nargs="+", default=[8, 16, 32],
                   help="CAE widths; c=16 (configs/cae.yaml's) gets every speed variant")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds of the epoch comparison")
    p.add_argument("--fit-batches", type=int, default=100,
                   help="training batches per timed epoch (default 100 of 429: bf16 is slow on CPUs "
                        "without bf16 instructions)")
    p.add_argument("--study", default="studies/quickstart.yaml")
    p.add_argument("--study-trials", type=int, default=6)
    p.add_argument("--study-epochs", type=int, default=3)
    p.add_argument("--skip-study", action="store_true")
    p.add_argument("--write", action="store_true", help="write BENCHMARKS.md")
    a = p.parse_args()
    lines = [f"- date: {datetime.date.today()}; command: `python {' '.join(sys.argv)}`",
             f"- machine: {platform.machine()} ({_cpu_name()}), {torch.get_num_threads()} torch threads, "
             f"python {platform.python_version()}, torch {torch.__version__}, "
             f"GPU: {torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none'}", "",
             "| measurement | aecls | reference | ratio |", "|---|---:|---:|---:|"]

    def row(*cells: str) -> None:
        lines.append("| " + " | ".join(cells) + " |")
        print(lines[-1], flush=True)

    d = bench_data(a.data_dir)
    row("data path, images/s (batch 128)", f"{d['aecls_device_batches']:,.0f}",
        f"{d['torchvision_dataloader']:,.0f} (torchvision DataLoader)", f"{d['ratio']:.1f}x")
    for c in a.channels:
        variants = ALL_VARIANTS if c == 16 else SHORT_VARIANTS
        f = bench_fit(c, rounds=a.rounds, data_dir=a.data_dir, limit_batches=a.fit_batches, variants=variants)
        for v in variants:
            row(f"CAE epoch c={c} ({a.fit_batches} batches of 128), Lightning `{v}`, images/s",
                f"{f[f'lightning_{v}']:,.0f}", f"{f['plain_loop']:,.0f} (plain loop)",
                f"{f[f'ratio_{v}']:.2f}")
    if not a.skip_study:
        before = FIT_VARIANTS["before"][0]
        args = (a.study, a.study_trials, a.study_epochs, "median")
        runs = {"before": bench_study(*args, 1, a.data_dir, before),
                "default": bench_study(*args, 1, a.data_dir),
                "default, 2 workers": bench_study(*args, 2, a.data_dir)}
        base = runs["before"]["trials_per_min"]
        for name, r in runs.items():
            row(f"study {Path(a.study).stem} ({a.study_trials} trials x {a.study_epochs} epochs, median "
                f"pruning), `{name}`, trials/min ({r['pruned']} pruned; best val/loss {r['best']:.5f})",
                f"{r['trials_per_min']:.2f}", f"{base:.2f} (`before`)", f"{r['trials_per_min'] / base:.2f}")
    mem = peak_rss_mib()
    row("peak RSS, MiB (this process / workers)", f"{mem['self']:,.0f} / {mem['children']:,.0f}", "", "")
    table = "\n".join(lines)
    if a.write:
        write_table(Path("BENCHMARKS.md"), table)
        print("written: BENCHMARKS.md")


def _cpu_name() -> str:
    """The CPU's model name (Linux), since speed options depend on its instruction set."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def write_table(path: Path, table: str) -> None:
    """Replace the table between the markers, keeping the hand-written reading around it."""
    start, end = "<!-- cpu-table -->", "<!-- /cpu-table -->"
    text = path.read_text() if path.is_file() else ""
    if start in text and end in text:
        head, rest = text.split(start, 1)
        text = head + start + "\n" + table + "\n" + end + rest.split(end, 1)[1]
    else:
        text = ("# Benchmarks\n\nAll rows of a table come from one run of `scripts/benchmark.py`; ratios "
                f"compare numbers measured side by side in that run.\n\n## CPU\n\n{start}\n{table}\n{end}\n")
    path.write_text(text)


if __name__ == "__main__":
    main()
