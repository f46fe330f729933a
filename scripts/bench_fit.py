#!/usr/bin/env python
"""One CAE epoch: a plain PyTorch loop vs aecls's Lightning fit (each speed variant), side by side
in one run."""

import argparse
import platform

import torch

from bench import FIT_VARIANTS, bench_fit


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--channels", type=int, nargs="+", default=[8, 16, 32], help="CAE widths c to measure")
    p.add_argument("--latent-dim", type=int, default=14)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--rounds", type=int, default=2, help="alternating rounds; the best of each side is kept")
    p.add_argument("--limit-batches", type=int, help="batches per epoch (default: the whole 55k split)")
    p.add_argument("--variants", nargs="+", default=["before", "default"], choices=list(FIT_VARIANTS),
                   help="Lightning fits to time against the plain loop (default: before default)")
    p.add_argument("--data-dir")
    p.add_argument("--device", default="cpu", help="cpu or cuda (both sides run there, data resident)")
    a = p.parse_args()
    gpu = torch.cuda.get_device_name(0) if a.device.startswith("cuda") else "no GPU"
    print(f"{platform.machine()}, {gpu}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"batch {a.batch_size}, latent {a.latent_dim}, best of {a.rounds} rounds")
    print("Lightning epoch: on_train_epoch_start..end; whole fit(): the call, start-up included")
    print(f"{'c':>4} {'variant':>20} {'plain loop img/s':>18} {'Lightning epoch':>16} {'ratio':>6} "
          f"{'whole fit()':>12} {'ratio':>6}")
    for c in a.channels:
        r = bench_fit(c, a.latent_dim, a.data_dir, a.batch_size, a.rounds, a.limit_batches, device=a.device,
                      variants=a.variants)
        for v in a.variants:
            print(f"{c:>4} {v:>20} {r['plain_loop']:>18,.0f} {r[f'lightning_{v}']:>16,.0f} "
                  f"{r[f'ratio_{v}']:>6.2f} {r[f'lightning_{v}_fit_call']:>12,.0f} "
                  f"{r[f'ratio_{v}_fit_call']:>6.2f}")


if __name__ == "__main__":
    main()
