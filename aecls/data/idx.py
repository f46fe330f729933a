"""Read and validate IDX files (the MNIST / Fashion-MNIST format), raw or gzip-compressed.

IDX layout: a 4-byte magic (0, 0, dtype code, n_dims), n_dims big-endian uint32 sizes, then the data.
We only need unsigned bytes: images are (N, 28, 28), labels (N,). Files are validated by structure,
never by md5: Debian's package recompresses them, so their checksums differ from the official ones.
"""

from __future__ import annotations

import functools
import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from aecls.core.constants import N_CLASSES
from aecls.core.errors import DataError

UBYTE = 0x08
IMAGE_SIDE = 28


def read_bytes(path: Path) -> bytes:
    """Whole file contents, gunzipped if the file starts with the gzip magic (whatever its name)."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e})") from e
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path}: corrupt or truncated gzip data ({e})") from e


def read_idx(path: str | Path, n_dims: int) -> np.ndarray:
    """Parse one IDX file of unsigned bytes with `n_dims` dimensions; raise DataError on any defect."""
    path = Path(path)
    data = read_bytes(path)
    header = 4 + 4 * n_dims
    if len(data) < header:
        raise DataError(f"{path}: truncated header ({len(data)} bytes, need {header})")
    zero, dtype, dims = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != UBYTE or dims != n_dims:
        want = f"0x0000{UBYTE:02x}{n_dims:02x}"
        got = data[:4].hex()
        raise DataError(f"{path}: bad magic number 0x{got} (expected {want}: unsigned bytes, {n_dims}-D)")
    shape = struct.unpack(f">{n_dims}I", data[4:header])
    expected = int(np.prod(shape, dtype=np.int64))
    body = len(data) - header
    if body < expected:
        raise DataError(f"{path}: truncated: header says {shape} ({expected} bytes), file holds {body}")
    if body > expected:
        raise DataError(f"{path}: {body - expected} unexpected trailing bytes after {shape} data")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def read_images(path: str | Path) -> np.ndarray:
    """(N, 28, 28) uint8 images."""
    images = read_idx(path, n_dims=3)
    if images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE):
        raise DataError(f"{path}: images are {images.shape[1]}x{images.shape[2]}, expected 28x28")
    return images


def read_labels(path: str | Path) -> np.ndarray:
    """(N,) uint8 labels in 0..9."""
    labels = read_idx(path, n_dims=1)
    if labels.size and labels.max() >= N_CLASSES:
        bad = int(np.argmax(labels >= N_CLASSES))
        raise DataError(f"{path}: label {labels[bad]} at index {bad} is outside 0..9")
    return labels


def read_pair(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images and labels of one split, checked to have the same count.

    Cached per process by path, size and mtime: a study builds a DataModule per trial, and
    gunzipping 47 MB each time would cost seconds per trial. The arrays are read-only.
    """
    return _read_pair_cached(*(_file_key(p) for p in (images_path, labels_path)))


def _file_key(path: Path) -> tuple[str, int, int]:
    try:
        st = Path(path).stat()
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e})") from e
    return str(path), st.st_size, st.st_mtime_ns


@functools.lru_cache(maxsize=4)
def _read_pair_cached(images_key: tuple, labels_key: tuple) -> tuple[np.ndarray, np.ndarray]:
    images_path, labels_path = Path(images_key[0]), Path(labels_key[0])
    images, labels = read_images(images_path), read_labels(labels_path)
    if len(images) != len(labels):
        raise DataError(
            f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} labels"
        )
    return images, labels


def write_idx(path: str | Path, array: np.ndarray, compress: bool | None = None) -> Path:
    """Write a uint8 array as IDX (gzip if `compress`, default: if the name ends in .gz). Used by tests."""
    path = Path(path)
    array = np.ascontiguousarray(array, dtype=np.uint8)
    blob = struct.pack(">HBB", 0, UBYTE, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    blob += array.tobytes()
    if compress if compress is not None else path.suffix == ".gz":
        blob = gzip.compress(blob, compresslevel=1)
    path.write_bytes(blob)
    return path
