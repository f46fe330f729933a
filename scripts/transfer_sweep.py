#!/usr/bin/env python
"""Label-efficiency sweep: python scripts/transfer_sweep.py --encoder PATH --labels 100,1000,10000,all
--seeds 3. Same as `aecls transfer sweep`; see --help."""

import sys

from aecls.cli import main

if __name__ == "__main__":
    sys.exit(main(["transfer", "sweep", *sys.argv[1:]]))
