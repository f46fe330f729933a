"""Flags more than one command takes."""

from __future__ import annotations

import argparse


def add_test_settings(parser: argparse.ArgumentParser) -> None:
    """The flags of the modules' test-only settings (BaseModule.test_settings)."""
    parser.add_argument("--nll-samples", type=int, metavar="K",
                        help="VAE: importance samples per test image for test/nll (default: the "
                             "checkpoint's own nll_samples; the test's cost grows with K, a lower K "
                             "gives a looser bound)")


def given_test_settings(args: argparse.Namespace) -> dict[str, int]:
    return {} if args.nll_samples is None else {"nll_samples": args.nll_samples}
