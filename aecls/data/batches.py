"""Device-resident batches: the whole split is one uint8 tensor on the device; batches are slices.

This replaces a DataLoader that builds each image in Python (PIL -> ToTensor -> collate): a slice
plus one uint8 -> float conversion per batch costs microseconds, so the model, not the input
pipeline, sets the speed. Lightning accepts any iterable with a length as a dataloader.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from aecls.data.transforms import augment as augment_batch


class DeviceBatches:
    """Iterate (x, y) batches of float images in [0, 1], (B, 1, 28, 28), and int64 labels, (B,).

    With `shuffle`, each epoch uses the permutation drawn from `seed + epoch`, so a run is
    reproducible and a resumed run sees the same order as an uninterrupted one.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int,
                 shuffle: bool = False, seed: int = 0, drop_last: bool = False,
                 augment: bool = False) -> None:
        assert images.dtype == torch.uint8 and images.ndim == 3, "expects (N, 28, 28) uint8"
        self.images, self.labels = images, labels
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        self.drop_last, self.augment = drop_last, augment
        self.epoch = 0
        # Lightning calls `set_epoch` on a dataloader's `batch_sampler` at the start of every epoch.
        self.batch_sampler = self

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        n = len(self.images)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def _generator(self) -> torch.Generator:
        g = torch.Generator(device=self.images.device)
        g.manual_seed(self.seed * 100_003 + self.epoch)
        return g

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n, device = len(self.images), self.images.device
        g = self._generator() if (self.shuffle or self.augment) else None
        order = torch.randperm(n, generator=g, device=device) if self.shuffle else None
        self.epoch += 1  # the next epoch differs even if nobody calls set_epoch
        for i in range(len(self)):
            idx = slice(i * self.batch_size, (i + 1) * self.batch_size)
            if order is not None:
                idx = order[idx]
            x = self.images[idx].unsqueeze(1).float().div_(255.0)  # (B, 28, 28) u8 -> (B, 1, 28, 28)
            if self.augment:
                x = augment_batch(x, generator=g)
            yield x, self.labels[idx]
