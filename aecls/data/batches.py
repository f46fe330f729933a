"""Device-resident batches: the whole split is one uint8 tensor on the device; batches are slices.

This replaces a DataLoader that builds each image in Python (PIL -> ToTensor -> collate): a slice
plus one uint8 -> float conversion per batch costs microseconds, so the model, not the input
pipeline, sets the speed. Lightning accepts any iterable with a length as a dataloader.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from aecls.data.transforms import augment as augment_batch
from aecls.data.transforms import to_unit


class DeviceBatches:
    """Iterate (x, y) batches of float images in [0, 1], (B, 1, 28, 28), and int64 labels, (B,);
    of float features, (B, D), as they are, when given features instead of uint8 images.

    With `shuffle`, each epoch uses the permutation drawn from `seed + epoch`, so a run is
    reproducible and a resumed run sees the same order as an uninterrupted one.

    Under DDP (`world_size > 1`) every rank draws the same permutation and takes every
    `world_size`-th image of it from position `rank` on: disjoint shards that together cover the
    epoch. Lightning's DistributedSampler does this for DataLoaders only. Training shards
    (`even=True`) are cut to the same length on every rank (the last `N mod world_size` images of
    each epoch's order are left out), since each training step synchronises gradients; evaluation
    shards keep every image, and the synced epoch means weigh each rank by its images.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int,
                 shuffle: bool = False, seed: int = 0, drop_last: bool = False,
                 augment: bool = False, rank: int = 0, world_size: int = 1, even: bool = False) -> None:
        features = images.is_floating_point()  # (N, D) codes of the images (DataModule.encoded)
        assert features or (images.dtype == torch.uint8 and images.ndim == 3), \
            "expects (N, 28, 28) uint8 images or float features"
        assert not (features and augment), "augmentation works on images, not features"
        assert 0 <= rank < world_size, f"rank {rank} of {world_size}"
        self.images, self.labels = images, labels
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        self.drop_last, self.augment = drop_last, augment
        self.rank, self.world_size, self.even = rank, world_size, even
        self.epoch = 0
        # Lightning calls `set_epoch` on a dataloader's `batch_sampler` at the start of every epoch.
        self.batch_sampler = self

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def shard_size(self) -> int:
        n, w = len(self.images), self.world_size
        return n // w if self.even else len(range(self.rank, n, w))

    def __len__(self) -> int:
        n = self.shard_size()
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def indices(self, g: torch.Generator | None = None) -> torch.Tensor | None:
        """This rank's image indices for the epoch in order; None: all, in file order."""
        n, device = len(self.images), self.images.device
        if not self.shuffle and self.world_size == 1:
            return None
        order = torch.randperm(n, generator=g, device=device) if self.shuffle \
            else torch.arange(n, device=device)
        return order[self.rank : self.shard_size() * self.world_size : self.world_size]

    def _generator(self) -> torch.Generator:
        g = torch.Generator(device=self.images.device)
        g.manual_seed(self.seed * 100_003 + self.epoch)
        return g

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        g = self._generator() if (self.shuffle or self.augment) else None
        order = self.indices(g)
        self.epoch += 1  # the next epoch differs even if nobody calls set_epoch
        for i in range(len(self)):
            idx = slice(i * self.batch_size, (i + 1) * self.batch_size)
            if order is not None:
                idx = order[idx]
            x = self.images[idx] if self.images.is_floating_point() else to_unit(self.images[idx])
            if self.augment:
                x = augment_batch(x, generator=g)
            yield x, self.labels[idx]
