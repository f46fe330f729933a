"""IDX reader: round trips, and every defect raises DataError naming the file and the problem."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from aecls.core.errors import DataError
from aecls.data.idx import read_idx, read_images, read_labels, read_pair, write_idx


@pytest.mark.parametrize("name", ["imgs", "imgs.gz"])
def test_round_trip(tmp_path, name):
    x = np.random.default_rng(0).integers(0, 256, size=(7, 28, 28), dtype=np.uint8)
    path = write_idx(tmp_path / name, x)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == name.endswith(".gz")
    np.testing.assert_array_equal(read_images(path), x)


def test_labels_round_trip(tmp_path):
    y = np.arange(20, dtype=np.uint8) % 10
    np.testing.assert_array_equal(read_labels(write_idx(tmp_path / "l.gz", y)), y)


def _header(dims, dtype=0x08):
    return struct.pack(">HBB", 0, dtype, len(dims)) + struct.pack(f">{len(dims)}I", *dims)


CORRUPT = {
    "bad magic number": (lambda: _header((2, 28, 28), dtype=0x0D) + bytes(2 * 784), read_images),
    "expected 28x28": (lambda: _header((2, 27, 28)) + bytes(2 * 27 * 28), read_images),
    "truncated": (lambda: _header((3, 28, 28)) + bytes(2 * 784), read_images),
    "trailing bytes": (lambda: _header((2, 28, 28)) + bytes(2 * 784 + 5), read_images),
    "truncated header": (lambda: b"\x00\x00\x08", read_images),
    "outside 0..9": (lambda: _header((3,)) + bytes([1, 10, 2]), read_labels),
}


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("problem", sorted(CORRUPT))
def test_corrupt_files_raise_data_error(tmp_path, problem, gz):
    blob, reader = CORRUPT[problem]
    blob = blob()
    path = tmp_path / ("bad.gz" if gz else "bad")
    path.write_bytes(gzip.compress(blob) if gz else blob)
    with pytest.raises(DataError, match=problem) as info:
        reader(path)
    assert str(path) in str(info.value)


def test_images_given_as_labels_is_a_magic_error(tmp_path):
    path = write_idx(tmp_path / "imgs", np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(DataError, match="bad magic"):
        read_labels(path)


def test_corrupt_gzip(tmp_path):
    blob = gzip.compress(_header((2, 28, 28)) + bytes(2 * 784))
    path = tmp_path / "cut.gz"
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DataError, match="corrupt or truncated gzip") as info:
        read_idx(path, 3)
    assert str(path) in str(info.value)


def test_count_mismatch(tmp_path):
    imgs = write_idx(tmp_path / "i", np.zeros((5, 28, 28), np.uint8))
    labels = write_idx(tmp_path / "l", np.zeros(4, np.uint8))
    with pytest.raises(DataError, match=r"5 images but .* 4 labels"):
        read_pair(imgs, labels)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="cannot read"):
        read_images(tmp_path / "nope")
