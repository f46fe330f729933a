"""The benchmark helpers run end to end on tiny data (their numbers are only meaningful on the
real data, measured by scripts/benchmark.py, never asserted here)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from scripts.bench import (
    bench_data,
    bench_fit,
    bench_sampler,
    bench_study,
    bench_study_overhead,
    peak_rss_mib,
)
from tests.helpers import write_study


@pytest.mark.slow
def test_bench_helpers_run(tiny_data):
    d = bench_data(str(tiny_data), batch_size=32, min_seconds=0.05, val_size=50)
    assert d["aecls_device_batches"] > 0 and d["torchvision_dataloader"] > 0
    f = bench_fit(4, data_dir=str(tiny_data), batch_size=32, rounds=1, limit_batches=3, val_size=50,
                  variants=("before", "channels_last", "default"))
    assert f["plain_loop"] > 0
    for v in ("before", "channels_last", "default"):
        assert f[f"lightning_{v}"] > 0 and f[f"ratio_{v}"] == f[f"lightning_{v}"] / f["plain_loop"]
    path = write_study("bench", epochs=1).resolve()
    for workers in (1, 2):
        s = bench_study(str(path), 2, 1, "none", workers=workers, data_dir=str(tiny_data))
        assert s["trials"] == 2 and s["pruned"] == 0 and s["trials_per_min"] > 0


def test_peak_memory_is_read_in_mib(monkeypatch):
    """Linux reports ru_maxrss in KiB. (Not measured in a child process: a child's peak starts at
    its parent's, a test process's gigabyte, across exec.)"""
    import resource

    kib = {resource.RUSAGE_SELF: 2048, resource.RUSAGE_CHILDREN: 512}
    monkeypatch.setattr(resource, "getrusage", lambda who: SimpleNamespace(ru_maxrss=kib[who]))
    assert peak_rss_mib() == {"self": 2.0, "children": 0.5}


def test_study_overhead_helper_runs():
    """The stand-in objective goes through aecls's real study loop (sampler, pruner, storage)."""
    r = bench_study_overhead("sqlite:///o.db", 12, 1, study_file=str(write_study("ov").resolve()),
                             marks=(10, 50), window=5)
    assert set(r) == {10, "cpu"} and 0 < r[10] < 60  # 50 is past the run's 12 trials: not read
    assert 0 < r["cpu"] < 60


def test_sampler_bench_runs_with_tpe_options():
    r = bench_sampler({"multivariate": False}, 12, study_file=str(write_study("sb").resolve()),
                      marks=(10, 50), window=5)
    assert set(r) == {10} and 0 < r[10] < 60
