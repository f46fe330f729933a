"""Side-by-side speed measurements (run from scripts/bench_*.py; never in the test suite).

Both sides of each comparison run in the same process, one after the other, on the same data, so
the ratio is meaningful on a noisy shared machine; numbers from different runs are not comparable.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from aecls.data import FashionMNISTDataModule
from aecls.data.idx import read_bytes
from aecls.data.locate import SPLIT_FILES


def images_per_second(make_epoch: Callable[[], Iterable], min_seconds: float = 2.0) -> float:
    """Iterate whole epochs (touching every batch) until `min_seconds` have passed; images/s."""
    n, start = 0, time.perf_counter()
    while True:
        for x, _ in make_epoch():
            n += len(x)
            float(x[0, 0, 0, 0])  # make sure the batch really exists (lazy/async backends)
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return n / elapsed


def torchvision_root(files: dict[str, tuple[Path, Path]], root: Path) -> Path:
    """A torchvision FashionMNIST root (`<root>/FashionMNIST/raw`, uncompressed) holding `files`."""
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for split, paths in files.items():
        for stem, path in zip(SPLIT_FILES[split], paths, strict=True):
            (raw / stem).write_bytes(read_bytes(path))
    return root


def bench_data(data_dir: str | None = None, batch_size: int = 128, workers: int = 0,
               min_seconds: float = 3.0) -> dict[str, float]:
    """Training-epoch throughput: aecls's device-resident batches vs torchvision's DataLoader."""
    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms

    dm = FashionMNISTDataModule(data_dir=data_dir, batch_size=batch_size, val_size=5000)
    dm.setup()
    ours = images_per_second(dm.train_dataloader, min_seconds)
    tmp = Path(tempfile.mkdtemp(prefix="aecls_bench_"))
    try:
        ds = datasets.FashionMNIST(str(torchvision_root(dm.files, tmp)), train=True,
                                   transform=transforms.ToTensor())
        loader = DataLoader(ds, batch_size=batch_size, shuffle=True, num_workers=workers)
        theirs = images_per_second(lambda: loader, min_seconds)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"aecls_device_batches": ours, "torchvision_dataloader": theirs, "ratio": ours / theirs}
