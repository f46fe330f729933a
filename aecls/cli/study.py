"""`aecls study run|best|plots` (also scripts/run_study.py and scripts/rerun_best.py)."""

from __future__ import annotations

import argparse
from pathlib import Path

from aecls.cli.options import add_test_settings, given_test_settings
from aecls.core.constants import SERVE_HOST, SERVE_PORT
from aecls.core.paths import (
    ARTIFACTS,
    DATA_DIR_ALIASES,
    DEFAULT_STORAGE,
    LOG_DIR,
    PARALLEL_STORAGE,
    SERVER_ARTIFACTS,
    tool_command,
)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("study", help="study file (studies/NAME.yaml) or its NAME")
    p.add_argument("--storage", default=DEFAULT_STORAGE,
                   help=f"sqlite:///FILE (default {DEFAULT_STORAGE}), journal:FILE (parallel workers "
                        f"on one host; {PARALLEL_STORAGE} is the default with --workers > 1) or "
                        "postgresql://USER[:PASSWORD]@HOST/DB (a password is never printed) or "
                        "grpc://HOST:PORT (an `aecls study serve` proxy, for many hosts)")
    p.add_argument(*DATA_DIR_ALIASES, dest="data_dir", help="IDX directory (default: the usual search order)")
    p.add_argument("--log-dir", default=LOG_DIR, help="TensorBoard runs: LOG_DIR/STUDY/trial_N")
    p.add_argument("--out", default=ARTIFACTS, help="plots, best.json, best_encoder.pt: OUT/STUDY/")
    p.add_argument("--allow-changes", action="store_true",
                   help="use the study although its file changed (space, epochs, objective, "
                        "model, data or seed) since the study was created")


def add_study_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("study", help="Optuna studies: run, re-run the best trial, plots",
                       description="An Optuna study searches a model family's settings (a study file: "
                                   "studies/NAME.yaml, docs/configs.md). `run` trains its trials (pruned, "
                                   "seeded, continued by a second run), `best` re-trains the best trial "
                                   "for its test score and exports its encoder, `plots` summarises it.")
    ssub = p.add_subparsers(dest="study_command", required=True)
    r = ssub.add_parser("run", help="run (or continue) a study",
                        description="Run a study until it holds N trials in total; a second run "
                                    "continues it. Pruned trials stop early. The study file's "
                                    "`objective:` is recon (default: the family's score, one number "
                                    "for its whole space: a VAE's ELBO, an autoencoder's MSE on clean "
                                    "images, a pretext's probe accuracy), loss (val/loss, the training "
                                    "loss), probe (the linear-probe accuracy of the frozen latents) "
                                    "or multi (the score and the probe, a Pareto front; Optuna cannot "
                                    "prune multi-objective trials, so every trial runs all its epochs: "
                                    "keep them modest).")
    _common(r)
    r.add_argument("--n-trials", type=int, help="total trials of the study (default: the study file's)")
    r.add_argument("--workers", type=int, default=1,
                   help="worker processes sharing the study (CPU threads are split between them; more "
                        "workers than GPUs share the GPUs round-robin)")
    r.add_argument("--no-progress", dest="progress", action="store_false",
                   help="no progress (a bar in a terminal, else a line per trial)")
    r.add_argument("--artifacts", metavar="DIR",
                   help="artifact store for the trials' reconstruction grids: a directory all hosts "
                        f"share (default: beside a file storage, ./{SERVER_ARTIFACTS} for a server)")
    r.set_defaults(func=_run)
    b = ssub.add_parser("best", help="re-train the best trial per seed, test it, export its encoder",
                        description="Re-train the selected trial's config once per seed (the trial's own "
                                    "seed first, all epochs), test each best checkpoint, and export the "
                                    "encoder of the best seed to OUT/STUDY/best_encoder.pt with "
                                    "OUT/STUDY/best.json. Reads the study; never creates one.")
    _common(b)
    b.add_argument("--seeds", type=int, default=3, help="seeds to re-train the best config with (>= 1)")
    b.add_argument("--select", choices=_rules(),
                   help="which trial to re-run: " + "; ".join(f"{k}: {v}" for k, v in _rules().items())
                        + ". Default: the study's objective (knee for multi); a single-objective "
                          "study accepts only its own objective. Recorded in best.json.")
    add_test_settings(b)
    b.set_defaults(func=_best)
    pl = ssub.add_parser("plots", help="save the study's PNG plots under OUT/STUDY/",
                         description="Print the study's summary and save its plots (history, "
                                     "importances, Pareto front for multi) as PNG under OUT/STUDY/. "
                                     "Reads the study; never creates one.")
    _common(pl)
    pl.set_defaults(func=_plots)
    sv = ssub.add_parser("serve", help="serve a study database to many hosts (Optuna's gRPC proxy)",
                         description="Run Optuna's gRPC storage proxy in front of one database until "
                                     "Ctrl-C; hosts then run `aecls study run|best|plots --storage "
                                     "grpc://HOST:PORT`. A trial of a host killed whole is failed and "
                                     "re-queued as on PostgreSQL directly. The proxy has no "
                                     "authentication: listen beyond localhost only on a trusted network.")
    sv.add_argument("--storage", required=True,
                    help="the database: postgresql://USER[:PASSWORD]@HOST/DB (or sqlite:///FILE); not "
                         "a Journal file, which Optuna's proxy cannot serve")
    sv.add_argument("--host", default=SERVE_HOST,
                    help="address to listen on (0.0.0.0: every interface, for other hosts)")
    sv.add_argument("--port", type=int, default=SERVE_PORT, help="port to listen on")
    sv.set_defaults(func=_serve)


def _serve(args: argparse.Namespace) -> None:
    from aecls.core.errors import check
    from aecls.hpo.serve import serve

    check(0 < args.port < 65536, f"--port must be 1-65535, got {args.port}")
    serve(args.storage, args.host, args.port)


def _rules() -> dict[str, str]:
    from aecls.hpo.rules import RULES

    return RULES


def _storage(args: argparse.Namespace) -> str:
    if getattr(args, "workers", 1) > 1 and args.storage == DEFAULT_STORAGE:
        return PARALLEL_STORAGE
    return args.storage


def _spec(args: argparse.Namespace, reads: bool = False):
    """The study file given, or, for a bare name that is no file, the one its study on --storage
    was last run from; for a command that `reads` a study, a --storage that is not there is
    what is missing."""
    from aecls.core.errors import AeclsError
    from aecls.hpo.space import StudyFileNotFound, load_study
    from aecls.hpo.study import recorded_study_file

    try:
        return load_study(args.study)
    except StudyFileNotFound as e:
        if reads and args.storage != DEFAULT_STORAGE:
            from aecls.hpo.storage import make_storage

            make_storage(_storage(args), create=False)
        recorded = recorded_study_file(args.study, _storage(args))
        if recorded is None:
            raise AeclsError(f"{e}, and no study {args.study} on {_storage(args)} records one; give the "
                             "study file's path (or --storage, where the study is)") from e
        return load_study(recorded)


def _run(args: argparse.Namespace) -> None:
    from aecls.core.errors import check
    from aecls.hpo.run import run_study
    from aecls.hpo.storage import dashboard_command
    from aecls.hpo.summary import study_outputs

    check(args.workers >= 1, "--workers must be >= 1")
    check(args.n_trials is None or args.n_trials >= 1, "--n-trials must be >= 1")
    spec, storage = _spec(args), _storage(args)
    study = run_study(spec, args.n_trials, storage, args.workers, args.data_dir, args.log_dir,
                      progress=args.progress, artifacts=args.artifacts, allow_changes=args.allow_changes,
                      outputs=(args.log_dir, args.out))
    text, plots = study_outputs(spec, study, f"{args.out}/{spec.name}")
    print(text)
    print(f"plots: {', '.join(str(p) for p in plots)}")
    print(f"dashboard: {dashboard_command(storage, args.artifacts)}")
    logs = (Path(args.log_dir) / spec.name).resolve()  # absolute: pasted in another folder
    print(f"TensorBoard: {tool_command('tensorboard', '--logdir', logs)}")


def _best(args: argparse.Namespace) -> None:
    from aecls.core.errors import check
    from aecls.hpo.best import format_best, rerun_best
    from aecls.hpo.run import open_study
    from aecls.hpo.storage import claim_outputs

    check(args.seeds >= 1, f"--seeds must be >= 1, got {args.seeds}")
    spec = _spec(args, reads=True)
    study = open_study(spec, args.storage, allow_changes=args.allow_changes, create=False)
    claim_outputs(spec.name, args.storage, args.log_dir, args.out)
    info = rerun_best(spec, study, args.seeds, args.data_dir, args.log_dir, args.out, select=args.select,
                      test_settings=given_test_settings(args))
    print(format_best(info))


def _plots(args: argparse.Namespace) -> None:
    from aecls.hpo.run import open_study
    from aecls.hpo.storage import claim_outputs
    from aecls.hpo.summary import study_outputs

    spec = _spec(args, reads=True)
    study = open_study(spec, args.storage, allow_changes=args.allow_changes, create=False)
    claim_outputs(spec.name, args.storage, args.out)
    text, plots = study_outputs(spec, study, f"{args.out}/{spec.name}")
    print(text)
    for p in plots:
        print(p)
