#!/usr/bin/env python
"""Write the settings of sweep CSVs that were copied without their sweep.json (NAME.json beside
NAME.csv), reconstructed from the command each row recorded: `aecls transfer sweep ...` parsed by
the command line's own parser, `aecls pipeline [--full]` by the pipeline's scale. Defaults are this
checkout's, so run it at (or near) the commit the rows name. `aecls transfer compare` reads the
settings to refuse unlike sweeps.

    python scripts/record_settings.py results/NAME/*.csv
"""

from __future__ import annotations

import csv
import json
import shlex
import sys
from pathlib import Path

from aecls.cli.main import _parser
from aecls.cli.transfer import sweep_config
from aecls.pipeline import FULL, QUICK
from aecls.transfer.config import SweepConfig
from aecls.transfer.runs import recorded, settings


def from_command(command: str) -> SweepConfig:
    words = shlex.split(command)
    if words[:2] == ["aecls", "pipeline"]:
        scale = FULL if "--full" in words else QUICK
        return scale.sweep("(the pipeline's encoders)", None)
    if words[:3] != ["aecls", "transfer", "sweep"]:
        raise SystemExit(f"cannot read settings from {command!r}")
    return sweep_config(_parser().parse_args(words[1:]))


def main(paths: list[str]) -> int:
    for path in map(Path, paths):
        if path.name.endswith("_curves.csv") or recorded(path) is not None:
            continue
        with open(path, newline="") as f:
            commands = sorted({r["command"] for r in csv.DictReader(f)})
        made = [settings(from_command(c)) for c in commands]
        made = [{k: v for k, v in m.items() if k != "encoder"} for m in made]  # the one thing compared
        if any(m != made[0] for m in made):
            raise SystemExit(f"{path}: its rows were made with different settings ({commands})")
        out = path.with_suffix(".json")
        out.write_text(json.dumps({"settings": made[0], "reconstructed_from": commands}, indent=2) + "\n")
        print(f"{out}: from {len(commands)} command(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
