#!/usr/bin/env python
"""Quality of the speed options: the same model config and seeds trained with each variant
(before = NCHW + Adam's per-parameter loop; default = what `aecls fit` does now), best val/loss
side by side. A speed default changes only where the variants agree within seed noise."""

import argparse
import datetime
import platform
import statistics
import sys

import torch

from bench import FIT_VARIANTS, speed_parity


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--config", default="cae", help="model config name or path (default: cae)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=3, help="epochs per fit (default: 3, the quickstart's)")
    p.add_argument("--variants", nargs="+", default=["before", "default"], choices=list(FIT_VARIANTS),
                   help="speed variants to compare (scripts/bench.py FIT_VARIANTS; default: before default)")
    p.add_argument("--limit-batches", type=int, help="batches per epoch (default: all)")
    p.add_argument("--data-dir")
    a = p.parse_args()
    print(f"- date: {datetime.date.today()}; command: `python {' '.join(sys.argv)}`")
    print(f"- machine: {platform.machine()}, {torch.get_num_threads()} torch threads, "
          f"torch {torch.__version__}")
    r = speed_parity(a.config, a.seeds, a.epochs, a.variants, a.data_dir, a.limit_batches)
    print("\n| variant | " + " | ".join(f"seed {s}" for s in a.seeds) + " | mean ± sd |")
    print("|---|" + "---:|" * (len(a.seeds) + 1))
    for v, by_seed in r.items():
        vals = [by_seed[s] for s in a.seeds]
        sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
        cells = " | ".join(f"{x:.5f}" for x in vals)
        print(f"| {v} | {cells} | {statistics.mean(vals):.5f} ± {sd:.5f} |")


if __name__ == "__main__":
    main()
