"""`aecls transfer sweep` (also scripts/transfer_sweep.py)."""

from __future__ import annotations

import argparse

from aecls.errors import AeclsError


def _budgets(text: str) -> list[int | None]:
    try:
        return [None if t.strip() == "all" else int(t) for t in text.split(",")]
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"--labels wants numbers or 'all', e.g. 100,1000,all: {e}") from e


def add_transfer_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("transfer", help="transfer learning: label-efficiency sweep")
    tsub = p.add_subparsers(dest="transfer_command", required=True)
    s = tsub.add_parser("sweep", help="scratch / frozen / finetune + logistic-regression baselines "
                                      "per label budget and seed")
    s.add_argument("--encoder", required=True,
                   help="artifacts/STUDY/best_encoder.pt (or its folder), or an AE checkpoint")
    s.add_argument("--labels", type=_budgets, default=[100, 1000, 10000, None],
                   help="label budgets, comma-separated; 'all' = the whole training split "
                        "(default 100,1000,10000,all)")
    s.add_argument("--seeds", type=int, default=3)
    s.add_argument("--epochs", type=int, default=10, help="passes over each labelled subset")
    s.add_argument("--min-steps", type=int, default=300, help="at least this many steps per run")
    s.add_argument("--lr", type=float, default=3e-3)
    s.add_argument("--head-hidden", type=int, default=64,
                   help="hidden width of the classifier head (0 = linear; default 64, the seed report's)")
    s.add_argument("--encoder-lr-scale", type=float, default=0.1,
                   help="finetune: the encoder's lr = --lr * this (default 0.1)")
    s.add_argument("--augment", action="store_true",
                   help="random crop + flip of the training batches (deep methods only)")
    s.add_argument("--methods", default=",".join(_methods()),
                   help=f"comma-separated subset of {','.join(_methods())}")
    s.add_argument("--data-dir")
    s.add_argument("--val-size", type=int, default=5000, help="images held out of the training set")
    s.add_argument("--out", default="artifacts/transfer", help="sweep.csv, sweep.md, sweep.png go here")
    s.add_argument("--no-progress", dest="progress", action="store_false")
    s.set_defaults(func=_sweep)
    c = tsub.add_parser("compare", help="two or more sweeps side by side (paired by seed)",
                        description="Read sweep CSVs (nothing is re-trained) and write compare.md "
                                    "(mean ± std per encoder, paired differences to the first) and "
                                    "compare.png.")
    c.add_argument("runs", nargs="+", type=_named,
                   help="NAME=PATH per sweep (its sweep.csv or folder); the first is the reference, "
                        "e.g. recon=artifacts/transfer probe=artifacts/transfer_probe")
    c.add_argument("--out", default="artifacts/transfer_compare", help="compare.md, compare.png go here")
    c.set_defaults(func=_compare)


def _named(text: str) -> tuple[str, str]:
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"want NAME=PATH, got {text!r}")
    return name, path


def _methods() -> tuple[str, ...]:
    from aecls.transfer import METHODS

    return METHODS


def _sweep(args: argparse.Namespace) -> None:
    from aecls.transfer import SweepConfig, markdown_table, run_sweep

    if args.lr <= 0 or args.epochs < 1 or args.min_steps < 1:
        raise AeclsError("--lr must be > 0, --epochs and --min-steps >= 1")
    cfg = SweepConfig(encoder=args.encoder, labels=args.labels, seeds=args.seeds, epochs=args.epochs,
                      min_steps=args.min_steps, lr=args.lr, head_hidden=args.head_hidden,
                      encoder_lr_scale=args.encoder_lr_scale, augment=args.augment, data_dir=args.data_dir,
                      val_size=args.val_size, out=args.out,
                      methods=tuple(m.strip() for m in args.methods.split(",")))
    rows = run_sweep(cfg, progress=args.progress)
    print(markdown_table(rows))
    print(f"written: {args.out}/sweep.csv, sweep.md, sweep.png")


def _compare(args: argparse.Namespace) -> None:
    from aecls.transfer.compare import compare_sweeps

    runs = dict(args.runs)
    if len(runs) != len(args.runs):
        raise AeclsError("each sweep needs its own NAME")
    written = compare_sweeps(runs, args.out)
    print(written["compare.md"].read_text())
    print(f"written: {written['compare.md']}, {written['compare.png']}")
