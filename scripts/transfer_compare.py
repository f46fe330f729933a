#!/usr/bin/env python
"""Sweeps of two encoders side by side: python scripts/transfer_compare.py
recon=artifacts/transfer probe=artifacts/transfer_probe [--out DIR].
Same as `aecls transfer compare`; see --help."""

import sys

from aecls.cli import main

if __name__ == "__main__":
    sys.exit(main(["transfer", "compare", *sys.argv[1:]]))
