"""`aecls transfer sweep` (also scripts/transfer_sweep.py)."""

from __future__ import annotations

import argparse
from dataclasses import MISSING, fields

from aecls.paths import COMPARE_MD, COMPARE_OUT, DATA_DIR_ALIASES
from aecls.transfer.config import SweepConfig


def _budgets(text: str) -> list[int | None]:
    try:
        return [None if t.strip() == "all" else int(t) for t in text.split(",")]
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"--labels wants numbers or 'all', e.g. 100,1000,all: {e}") from e


def _seeds(text: str) -> int | list[int]:
    """3 (a count: seeds 0, 1, 2) or 0,2,5 (the seeds themselves; one seed alone: 2,)."""
    try:
        return [int(t) for t in text.split(",") if t.strip()] if "," in text else int(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"--seeds wants a count or a list, e.g. 3 or 0,2,5: {e}") from e


def add_transfer_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("transfer", help="transfer learning: label-efficiency sweep, sweeps compared",
                       description="How much does a pretrained encoder help a classifier with few "
                                   "labels? `sweep` measures it per label budget and seed; `compare` "
                                   "sets sweeps side by side.")
    tsub = p.add_subparsers(dest="transfer_command", required=True)
    s = tsub.add_parser("sweep", help="scratch / frozen / finetune + logistic-regression baselines "
                                      "per label budget and seed",
                        description="For each label budget (a stratified, seeded subset of the training "
                                    "split) and seed, train a classifier from scratch, on the frozen "
                                    "encoder and fine-tuning it (and FixMatch with --methods ...,fixmatch), "
                                    "beside logistic regression on pixels and on PCA codes; each a fixed "
                                    "number of steps, scored once on the test set. Writes sweep.csv, "
                                    "sweep.md and sweep.png to --out.")
    add_config_flags(s, SweepConfig)
    s.add_argument("--no-progress", dest="progress", action="store_false",
                   help="no progress bar over the runs (outside a terminal there is none: a line per run)")
    s.set_defaults(func=_sweep)
    c = tsub.add_parser("compare", help="two or more sweeps side by side (paired by seed)",
                        description="Read sweep CSVs (nothing is re-trained) and write compare.md "
                                    "(pretext x method x labels side by side, the best of each budget; "
                                    "paired differences to the first; semi-supervised vs fine-tuning) "
                                    "and compare.png.")
    c.add_argument("runs", nargs="+", type=_named,
                   help="NAME=PATH per sweep (its sweep.csv or folder); the first is the reference, "
                        "e.g. cae=artifacts/transfer simclr=artifacts/transfer_simclr; the same NAME "
                        "twice merges two CSVs of one encoder (e.g. FixMatch run apart)")
    c.add_argument("--out", default=COMPARE_OUT, help="folder for compare.md (the table) and compare.png")
    c.add_argument("--vary", type=_names, default=(), metavar="SETTING[,SETTING]",
                   help="sweep settings the comparison is about (e.g. eval_ema): they may differ, and the "
                        "verdicts stay; any other setting that differs is refused")
    c.add_argument("--allow-unlike", action="store_true",
                   help="lay sweeps made with other settings side by side anyway, with no verdict "
                        "across them (the differing settings are listed)")
    c.set_defaults(func=_compare)


def _named(text: str) -> tuple[str, str]:
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"want NAME=PATH, got {text!r}")
    return name, path


def add_config_flags(parser: argparse.ArgumentParser, cls: type) -> None:
    """One flag per field of the config dataclass `cls`, with its default and its `help` metadata
    (so each default is written once, in the dataclass): --name-with-dashes; a bool is a switch;
    lists and tuples are comma-separated; a field without a default is required."""
    for f in fields(cls):
        flag, help_ = "--" + f.name.replace("_", "-"), f.metadata.get("help", "")
        default = f.default_factory() if f.default_factory is not MISSING else f.default
        if f.type == "bool":
            parser.add_argument(flag, action="store_true", help=help_)
            continue
        kind = {"int": int, "float": float, "list[int | None]": _budgets, "int | list[int]": _seeds,
                "tuple[str, ...]": _names, "list[str] | None": lambda t: list(_names(t))}.get(f.type, str)
        shown = ",".join("all" if v is None else str(v) for v in default) \
            if isinstance(default, (list, tuple)) else default
        names = [flag, *DATA_DIR_ALIASES[1:]] if f.name == "data_dir" else [flag]
        parser.add_argument(*names, dest=f.name, type=kind, default=None if default is MISSING else default,
                            required=default is MISSING,
                            help=help_ + ("" if default in (MISSING, None) else f" (default {shown})"))


def _names(text: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in text.split(",") if t.strip())


def sweep_config(args: argparse.Namespace) -> SweepConfig:
    """The SweepConfig that `aecls transfer sweep`'s parsed flags give."""
    return SweepConfig(**{f.name: getattr(args, f.name) for f in fields(SweepConfig)})


def _sweep(args: argparse.Namespace) -> None:
    from aecls.transfer.sweep import markdown_table, run_sweep

    cfg = sweep_config(args)
    rows = run_sweep(cfg, progress=args.progress)
    print(markdown_table(rows))
    print(f"written: {cfg.out}/sweep.csv, sweep.md, sweep.png")


def _compare(args: argparse.Namespace) -> None:
    from aecls.transfer.compare import compare_sweeps

    written = compare_sweeps(args.runs, args.out, vary=args.vary, allow_unlike=args.allow_unlike)
    print(written[COMPARE_MD].read_text())
    print(f"written: {', '.join(map(str, written.values()))}")
