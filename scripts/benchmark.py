#!/usr/bin/env python
"""aecls speed benchmarks, measured side by side in one run: data path, one CAE epoch (plain loop
vs Lightning), study throughput (pruning on/off, 2 workers), peak memory. --write puts the table
in BENCHMARKS.md. Run nothing else meanwhile: these machines are shared and noisy."""

import argparse
import datetime
import platform
import sys
from pathlib import Path

import torch

from aecls.bench import bench_data, bench_fit, bench_study, peak_rss_mib


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data-dir")
    p.add_argument("--channels", type=int, nargs="+", default=[8, 16, 32])
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds of the epoch comparison")
    p.add_argument("--study", default="studies/cae_seed004.yaml")
    p.add_argument("--study-trials", type=int, default=8)
    p.add_argument("--study-epochs", type=int, default=3)
    p.add_argument("--skip-study", action="store_true")
    p.add_argument("--write", action="store_true", help="write BENCHMARKS.md")
    a = p.parse_args()
    lines = [f"- date: {datetime.date.today()}; command: `python {' '.join(sys.argv)}`",
             f"- machine: {platform.machine()}, {torch.get_num_threads()} torch threads, "
             f"python {platform.python_version()}, torch {torch.__version__}, "
             f"GPU: {torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none'}", "",
             "| measurement | aecls | reference | ratio |", "|---|---:|---:|---:|"]
    d = bench_data(a.data_dir)
    lines.append(f"| data path, images/s (batch 128) | {d['aecls_device_batches']:,.0f} | "
                 f"{d['torchvision_dataloader']:,.0f} (torchvision DataLoader) | {d['ratio']:.1f}x |")
    for c in a.channels:
        f = bench_fit(c, rounds=a.rounds, data_dir=a.data_dir)
        lines.append(f"| CAE epoch c={c}, images/s | {f['lightning_epoch']:,.0f} (Lightning fit) | "
                     f"{f['plain_loop']:,.0f} (plain loop) | {f['ratio']:.2f} |")
    if not a.skip_study:
        runs = {name: bench_study(a.study, a.study_trials, a.study_epochs, pruner, workers, a.data_dir)
                for name, pruner, workers in (("no pruning", "none", 1), ("median pruning", "median", 1),
                                              ("median pruning, 2 workers", "median", 2))}
        base = runs["no pruning"]["trials_per_min"]
        for name, r in runs.items():
            lines.append(f"| study ({a.study_trials} trials x {a.study_epochs} epochs), {name}, trials/min "
                         f"({r['pruned']} pruned) | {r['trials_per_min']:.2f} | {base:.2f} (no pruning) | "
                         f"{r['trials_per_min'] / base:.2f} |")
    mem = peak_rss_mib()
    lines.append(f"| peak RSS, MiB (this process / workers) | {mem['self']:,.0f} / "
                 f"{mem['children']:,.0f} | | |")
    table = "\n".join(lines)
    print(table)
    if a.write:
        write_table(Path("BENCHMARKS.md"), table)
        print("written: BENCHMARKS.md")


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
