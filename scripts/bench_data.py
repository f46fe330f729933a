#!/usr/bin/env python
"""Images/s of aecls's device-resident batches vs a plain torchvision DataLoader, in one run."""

import argparse
import platform

import torch

from bench import bench_data


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data-dir", help="IDX directory (default: the usual search order)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--workers", type=int, default=0, help="DataLoader workers of the baseline")
    p.add_argument("--seconds", type=float, default=3.0, help="minimum time per side")
    a = p.parse_args()
    r = bench_data(a.data_dir, a.batch_size, a.workers, a.seconds)
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, batch {a.batch_size}")
    print(f"{'torchvision DataLoader(FashionMNIST, ToTensor()), workers=' + str(a.workers):58s}"
          f"{r['torchvision_dataloader']:>14,.0f} images/s")
    print(f"{'aecls device-resident batches':58s}{r['aecls_device_batches']:>14,.0f} images/s")
    print(f"{'ratio':58s}{r['ratio']:>14.1f}x")


if __name__ == "__main__":
    main()
