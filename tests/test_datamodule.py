"""FashionMNISTDataModule: splits, subsets, device batches, transforms; the real data when installed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aecls.core.errors import DataError
from aecls.data import FashionMNISTDataModule, add_noise, augment, stratified_subset, train_val_split
from aecls.data.locate import DATASETS, files_in


def _dm(tiny_data, **kw):
    dm = FashionMNISTDataModule(data_dir=str(tiny_data), val_size=50, batch_size=32, **kw)
    dm.setup()
    return dm


def test_split_is_seeded_and_disjoint():
    a_tr, a_va = train_val_split(1000, 100, seed=3)
    _b_tr, b_va = train_val_split(1000, 100, seed=3)
    _c_tr, c_va = train_val_split(1000, 100, seed=4)
    np.testing.assert_array_equal(a_va, b_va)
    assert not np.array_equal(a_va, c_va)
    assert len(a_va) == 100 and len(a_tr) == 900 and not set(a_tr) & set(a_va)


def test_bad_val_size(tiny_data):
    with pytest.raises(DataError, match="val_size=400"):
        FashionMNISTDataModule(data_dir=str(tiny_data), val_size=400).setup()


def test_datamodule_splits(tiny_data):
    dm = _dm(tiny_data)
    assert [len(dm.splits[s][0]) for s in ("train", "val", "test")] == [350, 50, 100]
    assert dm.classes[0] == "T-shirt/top" and len(dm.classes) == 10


def test_stratified_subset_deterministic_and_balanced():
    labels = np.repeat(np.arange(10), 50)
    a = stratified_subset(labels, 30, seed=1)
    assert np.array_equal(a, stratified_subset(labels, 30, seed=1))
    assert not np.array_equal(a, stratified_subset(labels, 30, seed=2))
    assert np.bincount(labels[a]).tolist() == [3] * 10
    uneven = stratified_subset(labels, 25, seed=1)
    assert sorted(np.bincount(labels[uneven]).tolist()) == [2] * 5 + [3] * 5
    assert np.bincount(labels[stratified_subset(labels, 4, seed=0, per_class=True)]).tolist() == [4] * 10


def test_subset_too_large_is_a_clear_error():
    with pytest.raises(DataError, match="label budget 600 is more than the 500 images"):
        stratified_subset(np.repeat(np.arange(10), 50), 600, seed=0)
    with pytest.raises(DataError, match="only 50"):  # 60 of each class
        stratified_subset(np.repeat(np.arange(10), 50), 60, seed=0, per_class=True)


def test_datamodule_label_subset(tiny_data):
    dm = _dm(tiny_data, n_labels=20)
    x, y = dm.splits["train"]
    assert len(x) == 20 and torch.bincount(y).tolist() == [2] * 10
    assert torch.equal(_dm(tiny_data, n_labels=20).splits["train"][0], x)


def test_batches_shapes_types_range(tiny_data):
    dm = _dm(tiny_data)
    loader = dm.train_dataloader()
    batches = list(loader)
    assert len(batches) == len(loader) == 10  # 350 // 32: the partial batch is dropped (>= 10 full ones)
    x, y = batches[0]
    assert x.shape == (32, 1, 28, 28) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert 0.0 <= x.min() and x.max() <= 1.0 and x.max() > 0.5
    assert sum(len(b[1]) for b in batches) == 320
    small = list(_dm(tiny_data, n_labels=40).train_dataloader())  # few labels: nothing dropped
    assert [len(b[1]) for b in small] == [32, 8]
    val = list(dm.val_dataloader())
    assert sum(len(b[1]) for b in val) == 50


def test_epochs_are_shuffled_reproducibly(tiny_data):
    first = [y for _, y in _dm(tiny_data).train_dataloader()]
    loader = _dm(tiny_data).train_dataloader()
    again, second = list(loader), list(loader)
    assert all(torch.equal(a, b[1]) for a, b in zip(first, again, strict=True))
    assert not all(torch.equal(a[1], b[1]) for a, b in zip(again, second, strict=True))
    loader.set_epoch(0)
    assert all(torch.equal(a, b[1]) for a, b in zip(first, loader, strict=True))


def test_noise_keeps_shape_and_range():
    x = torch.rand(16, 1, 28, 28)
    g = torch.Generator().manual_seed(0)
    noisy = add_noise(x, 0.4, g)
    assert noisy.shape == x.shape and noisy.min() >= 0 and noisy.max() <= 1
    assert (noisy - x).abs().mean() > 0.1
    assert torch.equal(noisy, add_noise(x, 0.4, torch.Generator().manual_seed(0)))
    assert torch.equal(add_noise(x, 0.0), x)


def test_augment_keeps_shape_range_and_content():
    x = torch.zeros(64, 1, 28, 28)
    x[:, :, 10:18, 4:8] = 1.0  # a bar left of centre
    out = augment(x, padding=2, generator=torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1
    assert torch.allclose(out.sum(dim=(1, 2, 3)), x.sum(dim=(1, 2, 3)))  # shifted by <= 2: bar stays in
    assert not torch.equal(out, x)
    flipped = (out[:, 0, :, 14:].sum(dim=(1, 2)) > 0).float().mean()
    assert 0.2 < flipped < 0.8  # about half mirrored to the right side


def test_augment_in_datamodule(tiny_data):
    x, _ = next(iter(_dm(tiny_data, augment=True).train_dataloader()))
    assert x.shape == (32, 1, 28, 28) and 0 <= x.min() and x.max() <= 1


REAL = DATASETS["fashion_mnist"].system_dir


@pytest.mark.realdata
@pytest.mark.skipif(files_in(REAL) is None, reason=f"real Fashion-MNIST not installed in {REAL}")
def test_real_fashion_mnist():
    dm = FashionMNISTDataModule(data_dir=str(REAL))
    arrays = dm.load_arrays()
    assert len(arrays["train"][0]) + len(arrays["val"][0]) == 60_000
    assert len(arrays["test"][0]) == 10_000
    all_train = np.concatenate([arrays["train"][1], arrays["val"][1]])
    assert np.bincount(all_train).tolist() == [6000] * 10
    assert np.bincount(arrays["test"][1]).tolist() == [1000] * 10
    mean = np.concatenate([arrays["train"][0], arrays["val"][0]]).mean() / 255
    assert abs(mean - 0.286) < 0.001
