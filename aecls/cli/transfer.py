"""`aecls transfer sweep` (also scripts/transfer_sweep.py)."""

from __future__ import annotations

import argparse
from dataclasses import MISSING, fields
from pathlib import Path

from aecls.core.paths import COMPARE_MD, COMPARE_OUT, DATA_DIR_ALIASES, LABELLING_MD, LABELLING_OUT
from aecls.transfer import graph
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
                                    "paired differences to the first; semi-supervised vs what it builds on) "
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
    r = tsub.add_parser("rescore", help="run one cell of a recorded sweep again, from its kept encoders",
                        description="Re-run one (labels, seed, method) of a sweep CSV with the settings "
                                    "and encoder files its JSON records (their sha256 checked first) into "
                                    "a new folder, and print its accuracy beside the recorded one.")
    r.add_argument("csv", help="a sweep CSV with its JSON beside it (results/FOLDER/NAME/sweep.csv)")
    r.add_argument("--labels", type=lambda t: _budgets(t)[0], required=True, help="the budget: 100, ..., all")
    r.add_argument("--seed", type=int, required=True, help="the seed")
    r.add_argument("--method", required=True, help="the method")
    r.add_argument(*DATA_DIR_ALIASES, dest="data_dir", default=None,
                   help="IDX directory (default: the search order)")
    r.add_argument("--out", default=None, help="folder for the new row (default: a temporary one)")
    r.set_defaults(func=_rescore)
    g = tsub.add_parser("labelling", help="graph pseudo-labels scored on validation images (to choose "
                                          "--pseudo-graph, --pseudo-keep and --graph-codes of a sweep)",
                        description="For each seed and label budget (the sweep's subsets), label the "
                                    "training and validation images by each graph algorithm on the k-NN "
                                    "graph of each encoder's codes (and all side by side), and score the "
                                    "labels on the validation images the graph is surest of, per "
                                    "fraction kept. Reads no test image. Writes labelling.csv, .md, .png.")
    g.add_argument("--encoder", dest="encoders", action="append", type=_named, required=True,
                   help="NAME=PATH, once per encoder (best_encoder.pt, its folder or an AE checkpoint)")
    g.add_argument("--labels", type=_budgets, default=[100, 1000], help="label budgets (default 100,1000)")
    g.add_argument("--seeds", type=_seeds, default=3, help="a count or a list, as the sweep's (default 3)")
    g.add_argument("--algorithms", type=_names, default=None,
                   help=f"comma-separated graph algorithms (default {','.join(graph.FAST)}; "
                        f"also {','.join(a for a in graph.ALGORITHMS if a not in graph.FAST)}: "
                        "Poisson-MBO, minutes a solve on the training + validation graph)")
    g.add_argument("--fractions", type=_fractions, default=None,
                   help="fractions of the validation images kept, surest first (default 0.25,0.5,0.75,1)")
    g.add_argument(*DATA_DIR_ALIASES, dest="data_dir", default=None,
                   help="IDX directory (default: the search order)")
    g.add_argument("--val-size", type=int, default=5000,
                   help="validation images (default 5000, as the sweep's)")
    g.add_argument("--out", default=LABELLING_OUT, help=f"folder for the outputs (default {LABELLING_OUT})")
    g.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    g.set_defaults(func=_labelling)


def _named(text: str) -> tuple[str, str]:
    """NAME=PATH; a path that exists is a path, named by its file's stem (a Lightning checkpoint,
    best-epoch=0.ckpt, has a "=" of its own)."""
    if Path(text).exists():
        return Path(text).stem, text
    name, sep, path = text.partition("=")
    if not sep or not name or not path or "/" in name:
        raise argparse.ArgumentTypeError(f"want NAME=PATH (or a path that exists), got {text!r}")
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


def _fractions(text: str) -> tuple[float, ...]:
    try:
        out = tuple(float(t) for t in text.split(",") if t.strip())
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"--fractions wants numbers in (0, 1], e.g. 0.5,1: {e}") from e
    if not out or not all(0 < f <= 1 for f in out):
        raise argparse.ArgumentTypeError(f"--fractions wants numbers in (0, 1], got {text!r}")
    return out


def _names(text: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in text.split(",") if t.strip())


def sweep_config(args: argparse.Namespace) -> SweepConfig:
    """The SweepConfig that `aecls transfer sweep`'s parsed flags give."""
    return SweepConfig(**{f.name: getattr(args, f.name) for f in fields(SweepConfig)})


def _sweep(args: argparse.Namespace) -> None:
    from aecls.transfer.sweep import markdown_table, run_sweep

    cfg = sweep_config(args)
    rows = run_sweep(cfg, progress=args.progress)
    print(markdown_table(rows, cfg.score))
    print(f"written: {cfg.out}/sweep.csv, sweep.md, sweep.png")


def _rescore(args: argparse.Namespace) -> None:
    from aecls.transfer.sweep import rescore

    now, was = rescore(args.csv, args.labels, args.seed, args.method, args.data_dir, args.out)
    said = "no such row" if was is None else f"{100 * was:.2f} %"
    print(f"{args.method}, {args.labels or 'all'} labels, seed {args.seed}: {100 * now:.2f} % now; "
          f"recorded: {said}")


def _compare(args: argparse.Namespace) -> None:
    from aecls.transfer.compare import compare_sweeps

    written = compare_sweeps(args.runs, args.out, vary=args.vary, allow_unlike=args.allow_unlike)
    print(written[COMPARE_MD].read_text())
    print(f"written: {', '.join(map(str, written.values()))}")


def _labelling(args: argparse.Namespace) -> None:
    from aecls.core.errors import check
    from aecls.transfer import labelling

    encoders = dict(args.encoders)
    check(len(encoders) == len(args.encoders), "each --encoder NAME once", "encoders")
    seeds = list(range(args.seeds)) if isinstance(args.seeds, int) else args.seeds
    rows = labelling.measure(encoders, args.labels, seeds, args.algorithms or graph.FAST,
                             args.fractions or labelling.FRACTIONS, args.data_dir, args.val_size,
                             args.progress)
    written = labelling.write(rows, Path(args.out))
    print(written[LABELLING_MD].read_text())
    print(f"written: {', '.join(map(str, written.values()))}")

