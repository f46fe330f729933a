#!/usr/bin/env python
"""Re-train a study's best trial per seed, print test metrics mean ± std, export its encoder to
artifacts/STUDY/best_encoder.pt + best.json: python scripts/rerun_best.py STUDY [--seeds 3].
Same as `aecls study best`; see --help."""

import sys

from aecls.cli import main

if __name__ == "__main__":
    sys.exit(main(["study", "best", *sys.argv[1:]]))
