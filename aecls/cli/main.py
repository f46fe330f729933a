"""`aecls` command line.

    aecls fit --config configs/cae.yaml [--model.init_args.net.latent_dim 14 ...]   (LightningCLI)
    aecls validate --config ... --ckpt_path PATH   validation metrics of a checkpoint (LightningCLI)
    aecls test --ckpt PATH [--data-dir DIR]     test metrics of any aecls checkpoint
    aecls data [--data-dir DIR] [--dataset mnist]   find, validate and summarise the IDX files
    aecls study run STUDY [--n-trials N] [--workers K] [--storage URL]   Optuna study
    aecls study best STUDY [--seeds 3]          re-run the best trial, export its encoder
    aecls study plots STUDY                     the study's summary and PNG plots
    aecls transfer sweep --encoder PATH [--labels 100,1000,all] [--seeds 3]   label efficiency
    aecls transfer compare A=PATH B=PATH        two or more sweeps side by side
    aecls transfer labelling --encoder NAME=PATH   graph pseudo-labels scored on validation images
    aecls report [--name main]                  reports/NAME/report.md from what is on disk
    aecls pipeline [--full] [--fresh]            the whole chain, finished stages skipped
    aecls results [--check]                     RESULTS.md's few-label tables from the rows in results/

Errors a user can cause (`AeclsError`) print one line on stderr and exit with code 2; Ctrl-C in
`study run` says which trial it re-queued and exits with 130.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from typing import NoReturn

from aecls.cli.options import add_test_settings, given_test_settings
from aecls.core.errors import AeclsError, FitInterrupted, Interrupted, mask_secrets
from aecls.core.paths import ARTIFACTS, DATA_DIR_ALIASES, LOG_DIR, REPORTS

LIGHTNING_COMMANDS = ("fit", "validate")


def _test(args: argparse.Namespace) -> None:
    from aecls.training.train import evaluate_checkpoint

    data_dir = args.data_dir
    if data_dir is None and args.config:
        data_dir = _config_data_dir(args.config)
    evaluate_checkpoint(args.ckpt, data_dir, args.accelerator, args.baselines,
                        test_settings=given_test_settings(args))


def _config_data_dir(path: str) -> str | None:
    from aecls.core.paths import read_config

    return read_config(path, model=False)["data"].get("data_dir")


def _data(args: argparse.Namespace) -> None:
    import numpy as np

    from aecls.core.constants import N_CLASSES
    from aecls.data.idx import read_pair
    from aecls.data.locate import locate

    for split, paths in locate(args.dataset, args.data_dir, args.download).items():
        x, y = read_pair(*paths)
        counts = np.bincount(y, minlength=N_CLASSES)
        print(f"{split:5s} {len(x):6d} images, pixel mean {x.mean() / 255:.4f}, "
              f"{counts.min()}..{counts.max()} per class  ({paths[0]}, {paths[1]})")


def _report(args: argparse.Namespace) -> None:
    from aecls.report.build import build_report

    path = build_report(args.name, args.out, args.log_dir, args.artifacts, args.study, args.data_dir)
    print(f"report: {path}")


def _results(args: argparse.Namespace) -> None:
    from aecls.report.results import regenerate, verify_encoders

    changed = regenerate(args.file, check_only=args.check)  # --check: out of step is an error, exit 1
    verified = verify_encoders(args.file)  # a kept encoder file that changed is an error too
    print(f"{args.file}: " + (f"regenerated {', '.join(changed)}" if changed and not args.check
                              else "every results block matches its rows")
          + f"; {verified} kept encoder file(s) match the sha256 their rows recorded")


def _pipeline(args: argparse.Namespace) -> None:
    from aecls.pipeline import run_pipeline

    run_pipeline(args.full, args.fresh, args.data_dir, show_plan=args.plan)


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions as written; every option's help ends with its default, unless it is off, empty
    or the help already names it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (action.option_strings and action.nargs != 0  # a switch: its default is "off"
                and default not in (None, False, argparse.SUPPRESS) and "default" not in text):
            shown = ",".join(map(str, default)) if isinstance(default, (list, tuple)) else default
            text += f" (default: {shown})"
        return text


class Parser(argparse.ArgumentParser):
    """aecls's parsers (sub-commands inherit the class, so each gets the help formatter)."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        """A bad command line in one line, exit 2 (argparse's own prints the whole usage first)."""
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _parser() -> argparse.ArgumentParser:
    p = Parser(prog="aecls", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    for name in LIGHTNING_COMMANDS:
        sub.add_parser(name, help=f"LightningCLI {name}: see `aecls {name} --help`", add_help=False)
    t = sub.add_parser("test", help="test metrics of an aecls checkpoint",
                       description="Rebuild any aecls checkpoint's model and data split and print its "
                                   "test metrics beside a baseline; a classifier's test also writes a "
                                   "per-class report and confusion matrix beside its checkpoints.")
    t.add_argument("--ckpt", "--ckpt_path", dest="ckpt", required=True,
                   help="checkpoint written by `aecls fit` (or a study); --ckpt_path is Lightning's spelling")
    t.add_argument("--config", help="a fit config (configs/NAME.yaml): its data.data_dir is used unless "
                                    "--data-dir is given; the model comes from the checkpoint")
    t.add_argument(*DATA_DIR_ALIASES, dest="data_dir",
                   help="IDX directory (default: the config's, else where the checkpoint's data was found)")
    t.add_argument("--accelerator", default="auto", help="cpu, gpu or auto (default)")
    add_test_settings(t)
    t.add_argument("--no-baselines", dest="baselines", action="store_false",
                   help="skip the reference numbers (PCA at the same latent dim for an AE, "
                        "the independent-pixel likelihood for a VAE)")
    t.set_defaults(func=_test)
    d = sub.add_parser("data", help="find, validate and summarise the IDX files",
                       description="Find the four IDX files (the search order is in the README), validate "
                                   "each and print its counts and pixel mean.")
    d.add_argument(*DATA_DIR_ALIASES, dest="data_dir",
                   help="directory with the four IDX files (default: search order)")
    d.add_argument("--dataset", default="fashion_mnist", choices=["fashion_mnist", "mnist"],
                   help="which IDX files to look for (their names and sizes)")
    d.add_argument("--download", action="store_true", help="allow torchvision's download")
    d.set_defaults(func=_data)
    from aecls.cli.study import add_study_parser
    from aecls.cli.transfer import add_transfer_parser

    add_study_parser(sub)
    add_transfer_parser(sub)
    r = sub.add_parser("report", help="build reports/NAME/report.md from logs, studies and artifacts",
                       description="Build one Markdown report (PNGs beside it) from what the stages left: "
                                   "checkpoints, the study's export, sweeps and their comparison. It only "
                                   "reads, and lists what is missing.")
    r.add_argument("--name", default="main", help="report folder name")
    r.add_argument("--study", default="quickstart",
                   help="study whose plots and best.json to include (the pipeline's by default)")
    r.add_argument("--log-dir", default=LOG_DIR, help="TensorBoard runs and checkpoints to read")
    r.add_argument("--artifacts", default=ARTIFACTS, help="study and transfer outputs to read")
    r.add_argument("--out", default=REPORTS, help="the report goes to OUT/NAME/report.md")
    r.add_argument(*DATA_DIR_ALIASES, dest="data_dir",
                   help="IDX directory (default: where the checkpoints' data was found)")
    r.set_defaults(func=_report)
    pl = sub.add_parser("pipeline", help="study -> best re-run -> fits -> transfer -> report, "
                                         "skipping finished stages",
                        description="The whole chain: the quickstart study, its best trial re-run and "
                                    "exported, one-epoch fits of the CAE, DAE, VAE and SimCLR, label sweeps "
                                    "of three encoders and their comparison, a frozen-encoder classifier, "
                                    "the report, sized for minutes on a laptop (the report states the "
                                    "scale). Finished stages are skipped.")
    pl.add_argument("--full", action="store_true",
                    help="the full scale: studies/cae_seed004.yaml, every family at its config's epochs, "
                         "3 seeds, all labels (hours on a CPU)")
    pl.add_argument("--fresh", action="store_true", help="delete earlier pipeline outputs first")
    pl.add_argument("--plan", action="store_true",
                    help="print the stages, the runs of each and the estimated wall time; run nothing")
    pl.add_argument(*DATA_DIR_ALIASES, dest="data_dir", help="IDX directory (default: the search order)")
    pl.set_defaults(func=_pipeline)
    res = sub.add_parser("results", help="regenerate RESULTS.md's few-label tables from the committed rows",
                         description="Rewrite each block of RESULTS.md between `<!-- results: FOLDER -->` "
                                     "and `<!-- /results -->` from the sweep CSVs that FOLDER/compare.json "
                                     "lists (the comparison, its paired tests, where the rows came from), "
                                     "and the compare.md and compare.png of every folder under results/ "
                                     "with a compare.json, those no block names too.")
    res.add_argument("--file", default="RESULTS.md", help="the Markdown file with results blocks")
    res.add_argument("--check", action="store_true",
                     help="change nothing; exit 1 if a block or a compare.md differs from its rows")
    res.set_defaults(func=_results)
    return p


def flags_for(argv: list[str], setting: str | tuple[str, ...]) -> str:
    """The command line's spelling of the setting(s) an error names (AeclsError.setting), read from
    the parser of the command that ran: its options whose destination is that setting ("" where it
    has none). LightningCLI's commands spell their keys `--KEY` (`--ckpt_path`)."""
    settings = (setting,) if isinstance(setting, str) else tuple(setting)
    if argv and argv[0] in LIGHTNING_COMMANDS:  # the data folder is a DataModule argument there
        return "/".join(DATA_DIR_ALIASES[1] if s == "data_dir" else f"--{s}" for s in settings)
    parser = _parser()
    for word in argv:  # down the subcommands named (`study run`, `transfer sweep`)
        sub = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
        if sub is None or word not in sub.choices:
            break
        parser = sub.choices[word]
    return "/".join(next(o for o in a.option_strings if o.startswith("--"))
                    for s in settings for a in parser._actions
                    if a.dest == s and any(o.startswith("--") for o in a.option_strings))


def user_error(exc: BaseException) -> AeclsError | None:
    """The AeclsError behind `exc`, if any: jsonargparse wraps errors raised while it instantiates."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, AeclsError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


# How a stopped command exits: the shell's codes for the signal (128 + its number).
STOPPED = {signal.SIGINT: ("interrupted (Ctrl-C)", 130), signal.SIGTERM: ("terminated (SIGTERM)", 143)}
AFTER_STOP = {"fit": "; `--ckpt_path last` resumes it from its last finished epoch"}


class _Stop:
    """Which signal stopped the command. SIGTERM (what a scheduler such as SLURM sends before it
    kills) stops it as Ctrl-C does, so it leaves what Ctrl-C leaves (Lightning's graceful stop, a
    study's re-queued trial); without this, Lightning would finish the fit and exit 0."""

    signum = signal.SIGINT

    @classmethod
    def on_sigterm(cls, signum, frame) -> None:
        cls.signum = signal.SIGTERM
        raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    _Stop.signum = signal.SIGINT
    previous = signal.signal(signal.SIGTERM, _Stop.on_sigterm)
    try:
        if argv and argv[0] in LIGHTNING_COMMANDS:
            from aecls.cli.fit import run_lightning

            run_lightning(argv)
            return 0
        args = _parser().parse_args(argv)
        args.func(args)
    except (KeyboardInterrupt, FitInterrupted):
        how, code = STOPPED[_Stop.signum]
        command = " ".join(a for a in argv[:2] if not a.startswith("-")) or "aecls"
        print(f"aecls: {command} {how}{AFTER_STOP.get(argv[0] if argv else '', '')}", file=sys.stderr)
        return code
    except BrokenPipeError:  # the reader went away (`aecls ... | head`): nothing more to say, to anyone
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as e:
        if (err := user_error(e)) is None:
            raise
        prefix, code = "aecls: error: ", err.exit_code
        if isinstance(err, Interrupted):  # a study's own line: which trials it re-queued
            how, code = STOPPED[_Stop.signum]
            prefix = f"aecls: {how}: "
        text = " ".join(line.strip() for line in str(err).splitlines())  # one line, always
        if getattr(err, "setting", None) and (flags := flags_for(argv, err.setting)):
            text += f" [{flags}]"
        print(f"{prefix}{mask_secrets(text)}", file=sys.stderr)
        return code
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0


if __name__ == "__main__":
    sys.exit(main())
