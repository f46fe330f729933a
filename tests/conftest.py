"""Tiny synthetic IDX data sets, written fresh for each test session (the network is never used)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from aecls.data.idx import write_idx
from aecls.data.locate import SPLIT_FILES

N_TRAIN, N_TEST = 400, 100

# scripts/test.sh runs the suite on pytest-xdist workers (two): each computes on one thread,
# and so do the processes its tests start (through the environment), because more threads than
# cores make the pools spin against each other and a test then runs many times slower.
if os.environ.get("PYTEST_XDIST_WORKER"):
    from aecls.modules.speed import limit_threads

    limit_threads(1)


def synthetic_images(labels: np.ndarray, seed: int) -> np.ndarray:
    """(N, 28, 28) uint8: class c is a bright bar at a class-specific place, plus noise."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 40, size=(len(labels), 28, 28)).astype(np.float32)
    for i, c in enumerate(labels):
        row, col = 2 + (c // 5) * 13, 2 + (c % 5) * 5
        x[i, row : row + 10, col : col + 4] += rng.uniform(150, 215)
    return x.clip(0, 255).astype(np.uint8)


def write_dataset(directory: Path, n_train: int = N_TRAIN, n_test: int = N_TEST, gz: bool = True,
                  seed: int = 0) -> Path:
    """Write the four IDX files (balanced labels) into `directory`; return it."""
    directory.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    for split, n, s in (("train", n_train, seed), ("test", n_test, seed + 1)):
        labels = np.arange(n) % 10
        np.random.default_rng(s).shuffle(labels)
        images_name, labels_name = SPLIT_FILES[split]
        write_idx(directory / (images_name + suffix), synthetic_images(labels, s))
        write_idx(directory / (labels_name + suffix), labels)
    return directory


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """A directory with gzip'ed synthetic Fashion-MNIST-shaped IDX files (400 train, 100 test)."""
    return write_dataset(tmp_path_factory.mktemp("tiny_idx"))


@pytest.fixture(autouse=True)
def _isolate(monkeypatch, tmp_path):
    """Run every test in its own directory, with no AECLS_DATA leaking in from the environment."""
    monkeypatch.delenv("AECLS_DATA", raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def postgres_url():
    """A real PostgreSQL server for the study tests; skipped (with the reason) where none starts."""
    import tempfile

    from tests.services import start_postgres

    try:
        url, stop = start_postgres(Path(tempfile.mkdtemp(prefix="aecls_pg_")))
    except RuntimeError as e:
        pytest.skip(f"no PostgreSQL server: {e}")
    yield url
    stop()
