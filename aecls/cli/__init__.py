"""The `aecls` command line: argparse for aecls's own commands, LightningCLI for fit/validate."""

from aecls.cli.main import main

__all__ = ["main"]
