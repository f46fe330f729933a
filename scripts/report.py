#!/usr/bin/env python
"""Build reports/NAME/report.md (+ PNGs) from logs, studies and artifacts: python scripts/report.py
[--name main] [--study cae_seed004]. Same as `aecls report`; see --help."""

import sys

from aecls.cli import main

if __name__ == "__main__":
    sys.exit(main(["report", *sys.argv[1:]]))
