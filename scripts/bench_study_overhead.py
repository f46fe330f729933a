#!/usr/bin/env python
"""The cost of a study's bookkeeping (issue #22): aecls's real sampler, pruner, storage, worker
lock and user attrs, with a stand-in objective that trains nothing (scripts/bench.py stand_in_objective),
as seconds per trial (per worker) around 100, 1,000, ... trials so far, per storage and number of
workers. Each run starts from an empty storage in a temporary directory; PostgreSQL is a throw-away
server on loopback (as the storage tests start one), `proxy` the same behind `aecls study serve`
(Optuna's gRPC proxy, one more local process). Prints a Markdown table."""

import argparse
import datetime
import json
import os
import platform
import shutil
import sys
import tempfile
from pathlib import Path

import optuna

from bench import bench_sampler, bench_study_overhead

REPO = Path(__file__).resolve().parents[1]
STORAGES = ("sqlite", "journal", "postgresql", "proxy")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--storages", nargs="+", default=list(STORAGES), choices=STORAGES)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 4, 8])
    p.add_argument("--marks", type=int, nargs="+", default=[100, 1000, 3000],
                   help="trials so far at which the per-trial cost is read (the largest is the run's length)")
    p.add_argument("--study", default=str(REPO / "studies/quickstart.yaml"), help="its space and pruner")
    p.add_argument("--tpe-args", nargs="+", metavar="JSON",
                   help="instead of the storages: the sampler and pruner alone, in memory, once per "
                        "set of Optuna TPE options (a study file's sampler_args), e.g. '{}' "
                        "'{\"multivariate\": false}'")
    a = p.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print(f"- date: {datetime.date.today()}; command: `python {' '.join(sys.argv)}`")
    print(f"- machine: {platform.machine()}, {os.cpu_count()} cores, optuna {optuna.__version__}\n")
    if a.tpe_args:
        print("| TPE options | " + " | ".join(f"s/trial at {m}" for m in a.marks) + " |")
        print("|---|" + "---:|" * len(a.marks))
        for args in a.tpe_args:
            r = bench_sampler(json.loads(args), max(a.marks), a.study, a.marks)
            print(f"| `{args}` | " + " | ".join(f"{r[m]:.4f}" for m in a.marks) + " |", flush=True)
        return
    print("| storage | workers | " + " | ".join(f"s/trial at {m}" for m in a.marks) + " | CPU s/trial |")
    print("|---|---:|" + "---:|" * (len(a.marks) + 1))
    for name in a.storages:
        for w in a.workers:
            tmp, cwd, stops = Path(tempfile.mkdtemp(prefix="aecls_overhead_")), os.getcwd(), []
            os.chdir(tmp)
            try:
                if name in ("postgresql", "proxy"):
                    sys.path.insert(0, str(REPO))
                    from tests.services import start_postgres, start_proxy

                    url, stop = start_postgres(Path(tempfile.mkdtemp(prefix="aecls_pg_")))
                    stops.append(stop)
                    if name == "proxy":
                        url, stop = start_proxy(url)
                        stops.insert(0, stop)
                else:
                    url = {"sqlite": "sqlite:///o.db", "journal": "journal:o.journal"}[name]
                r = bench_study_overhead(url, max(a.marks), w, a.study, a.marks)
            finally:
                for stop in stops:
                    stop()
                os.chdir(cwd)
                shutil.rmtree(tmp, ignore_errors=True)
            cells = " | ".join(f"{r[m]:.3f}" if m in r else "" for m in [*a.marks, "cpu"])
            print(f"| {name} | {w} | {cells} |", flush=True)


if __name__ == "__main__":
    main()
