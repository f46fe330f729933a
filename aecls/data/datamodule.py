"""FashionMNISTDataModule: one LightningDataModule for every model (AE, DAE, VAE, classifier).

IDX files -> validated uint8 arrays -> seeded train/val split (+ optional stratified label subset)
-> uint8 tensors on the training device -> `DeviceBatches` of float (B, 1, 28, 28) in [0, 1].
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import lightning as L
import numpy as np
import torch

from aecls.core.errors import DataError
from aecls.data.batches import DeviceBatches
from aecls.data.idx import read_images, read_pair
from aecls.data.locate import dataset_spec, locate
from aecls.data.subsets import stratified_subset, train_val_split


class FashionMNISTDataModule(L.LightningDataModule):
    """Fashion-MNIST (or MNIST with `dataset="mnist"`), held on the device as whole tensors.

    Args:
        data_dir: directory with the four IDX files (raw or .gz), or a torchvision root.
            Default: $AECLS_DATA, ./data/FashionMNIST/raw, then the Debian package's directory.
        dataset: "fashion_mnist" or "mnist".
        batch_size: training batch size; evaluation uses `eval_batch_size`.
        val_size: images of the 60k training set held out for validation (seeded split).
        seed: seeds the split, the label subset and the per-epoch shuffling.
        n_labels: keep only a stratified subset of the training split with this many labels
            (per class with `labels_per_class=True`); None keeps all. For the transfer stage.
        augment: random crop (padding 2) + horizontal flip on training batches (for classifiers).
        download: allow torchvision's downloader when no local copy is found (needs internet).
        device: where the tensors live; "auto" = the trainer's device (CPU without a trainer).
    """

    def __init__(self, data_dir: str | None = None, dataset: str = "fashion_mnist",
                 batch_size: int = 128, eval_batch_size: int = 1000, val_size: int = 5000,
                 seed: int = 0, n_labels: int | None = None, labels_per_class: bool = False,
                 augment: bool = False, download: bool = False, device: str = "auto") -> None:
        super().__init__()
        self.save_hyperparameters()
        dataset_spec(dataset)  # fail early on a typo
        if batch_size <= 0 or eval_batch_size <= 0:
            raise DataError(f"batch sizes must be positive (got {batch_size}, {eval_batch_size})")
        self.classes = dataset_spec(dataset).classes
        self.splits: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self.files: dict[str, tuple[Path, Path]] = {}

    def prepare_data(self) -> None:
        # Runs once per machine: only this step may download.
        locate(self.hparams.dataset, self.hparams.data_dir, self.hparams.download)

    def _device(self) -> torch.device:
        if self.hparams.device != "auto":
            return torch.device(self.hparams.device)
        if self.trainer is not None:
            return self.trainer.strategy.root_device
        return torch.device("cpu")

    def load_arrays(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Validated numpy (images, labels) for the train/val/test splits (train after subsetting)."""
        hp = self.hparams
        self.files = locate(hp.dataset, hp.data_dir, download=False)
        train_x, train_y = read_pair(*self.files["train"])
        test_x, test_y = read_pair(*self.files["test"])
        tr, va = train_val_split(len(train_x), hp.val_size, hp.seed)
        if hp.n_labels is not None:
            tr = tr[stratified_subset(train_y[tr], hp.n_labels, hp.seed, hp.labels_per_class)]
        return {"train": (train_x[tr], train_y[tr]), "val": (train_x[va], train_y[va]),
                "test": (test_x, test_y)}

    def unlabelled_images(self) -> torch.Tensor:
        """The training split's images (the labelled subset's among them), (N, 28, 28) uint8 on
        the CPU, read from the image file alone: what a semi-supervised method may use beside
        its labelled subset, with no label it may not see."""
        hp = self.hparams
        images = read_images(locate(hp.dataset, hp.data_dir, download=False)["train"][0])
        train, _ = train_val_split(len(images), hp.val_size, hp.seed)
        return torch.from_numpy(images[train].copy())

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        device = self._device()
        for name, (x, y) in self.load_arrays().items():
            self.splits[name] = (torch.from_numpy(x.copy()).to(device),
                                 torch.from_numpy(y.astype(np.int64)).to(device))

    def encoded(self, encode: Callable[[torch.Tensor], torch.Tensor],
                splits: tuple[str, ...] | None = None) -> FashionMNISTDataModule:
        """A copy whose splits hold `encode(images)`, float (N, D), in place of the images: the same
        split, subset, labels and batch order (the same seed). For a fixed function of the image
        (a frozen encoder), computed once here instead of at every step that meets the image; so
        no augmentation, which changes the images first. `splits`: only these (default all), for
        a caller that never reads the others (a run without validation skips its 5,000 images)."""
        if self.hparams.augment:
            raise DataError("encoded(): augmentation changes the images at every step; "
                            "their codes cannot be computed once")
        self.setup()
        out = type(self)(**self.hparams)
        out.files = self.files
        for name, (x, y) in self.splits.items():
            if splits is not None and name not in splits:
                continue
            batches = DeviceBatches(x, y, self.hparams.eval_batch_size)
            out.splits[name] = (torch.cat([encode(b) for b, _ in batches]), y)
        return out

    def _batches(self, split: str, train: bool) -> DeviceBatches:
        if not self.splits:
            self.setup()
        x, y = self.splits[split]
        hp = self.hparams
        # Under DDP each rank iterates its own shard (see DeviceBatches).
        shard = {"rank": 0, "world_size": 1}
        if self.trainer is not None and self.trainer.world_size > 1:
            shard = {"rank": self.trainer.global_rank, "world_size": self.trainer.world_size}
        if train:
            # drop_last only when it loses little: a 100-label subset must still give a batch.
            return DeviceBatches(x, y, hp.batch_size, shuffle=True, seed=hp.seed,
                                 drop_last=len(x) >= 10 * hp.batch_size, augment=hp.augment,
                                 even=True, **shard)
        return DeviceBatches(x, y, hp.eval_batch_size, **shard)

    def train_dataloader(self) -> DeviceBatches:
        return self._batches("train", train=True)

    def val_dataloader(self) -> DeviceBatches:
        return self._batches("val", train=False)

    def test_dataloader(self) -> DeviceBatches:
        return self._batches("test", train=False)

    def predict_dataloader(self) -> DeviceBatches:
        return self._batches("test", train=False)
