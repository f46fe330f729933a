#!/usr/bin/env python
"""Run (or continue) an Optuna study: python scripts/run_study.py STUDY [--n-trials N] [--workers K]
[--storage URL]. Same as `aecls study run`; see --help."""

import sys

from aecls.cli import main

if __name__ == "__main__":
    sys.exit(main(["study", "run", *sys.argv[1:]]))
