"""`aecls` command line.

    aecls fit --config configs/cae.yaml [--model.init_args.net.latent_dim 14 ...]   (LightningCLI)
    aecls validate --config ... --ckpt_path PATH                                   (LightningCLI)
    aecls test --ckpt PATH [--data-dir DIR]     test metrics of any aecls checkpoint
    aecls data [--data-dir DIR] [--dataset mnist]   find, validate and summarise the IDX files
    aecls study run STUDY [--n-trials N] [--workers K] [--storage URL]   Optuna study
    aecls study best STUDY [--seeds 3]          re-run the best trial, export its encoder
    aecls transfer sweep --encoder PATH [--labels 100,1000,all] [--seeds 3]   label efficiency
    aecls report [--name main]                  reports/NAME/report.md from what is on disk
    aecls pipeline [--full] [--fresh]            the whole chain, finished stages skipped

Errors a user can cause (`AeclsError`) print one line on stderr and exit with code 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from aecls.errors import AeclsError

LIGHTNING_COMMANDS = ("fit", "validate")


def _lightning_cli(argv: list[str]) -> None:
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

    from aecls.data import FashionMNISTDataModule
    from aecls.modules import BaseModule

    class AeclsCLI(LightningCLI):
        def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
            parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
            parser.set_defaults({"checkpoint.monitor": "val/loss", "checkpoint.save_last": True,
                                 "checkpoint.filename": "best-{epoch}"})
            parser.add_argument("--test_after_fit", type=bool, default=False,
                                help="after fit, test the best checkpoint and print its metrics")

        def before_instantiate_classes(self) -> None:
            cfg = self.config[self.subcommand]
            if cfg.get("ckpt_path") == "last":
                _resolve_last(cfg)

        def after_fit(self) -> None:
            if self.trainer.world_size > 1:
                # Under DDP, rank 0 alone prints and tests, in one process: the fit's process
                # group goes, so the test's own trainer waits for no other rank.
                import torch.distributed as dist

                if dist.is_initialized():
                    dist.destroy_process_group()
                if not self.trainer.is_global_zero:
                    return
            best = self.trainer.checkpoint_callback.best_model_path
            print(f"best checkpoint: {best}")
            if self.config.fit.test_after_fit and best:
                print_test(best, self.datamodule.hparams.data_dir)

    AeclsCLI(BaseModule, FashionMNISTDataModule, subclass_mode_model=True,
             args=None if argv == sys.argv[1:] else argv,
             save_config_kwargs={"overwrite": True}, seed_everything_default=0)


def _resolve_last(cfg) -> None:
    """`--ckpt_path last`: resume the newest run of this config's logger, in the same log version.

    (Lightning alone would look in the new run's empty version directory and start from scratch.)
    """
    logger = cfg.trainer.get("logger")
    init = getattr(logger, "init_args", None)
    if init is None:
        raise AeclsError("--ckpt_path last needs a TensorBoardLogger in the config (trainer.logger)")
    root = Path(init.save_dir) / (init.get("name") or "lightning_logs")
    runs = sorted(root.glob("version_*/checkpoints/last.ckpt"), key=lambda p: p.stat().st_mtime)
    if not runs:
        raise AeclsError(f"--ckpt_path last: no last.ckpt under {root}/version_*/checkpoints to resume")
    cfg.ckpt_path = str(runs[-1])
    init.version = runs[-1].parts[-3]  # keep logging into the interrupted run
    print(f"resuming {cfg.ckpt_path}")


def _test(args: argparse.Namespace) -> None:
    print_test(args.ckpt, args.data_dir, args.accelerator, args.baselines)


def print_test(ckpt_path: str, data_dir: str | None = None, accelerator: str = "auto",
               baselines: bool = True) -> dict[str, float]:
    """Test metrics of a checkpoint (and its baselines), printed one per line and returned."""
    from aecls.checkpoints import load_datamodule, load_module
    from aecls.training import make_trainer

    module, ckpt = load_module(ckpt_path)
    dm = load_datamodule(ckpt, data_dir=data_dir)
    results = make_trainer(1, accelerator=accelerator).test(module, datamodule=dm, verbose=False)[0]
    if baselines:
        from aecls.baselines import baselines_for

        results.update(baselines_for(module, dm.splits["train"][0].cpu().numpy(),
                                     dm.splits["test"][0].cpu().numpy()))
    print(f"{type(module).__name__} {ckpt_path}")
    for name, value in sorted(results.items()):
        print(f"  {name:32s} {value:.6g}")
    if getattr(module, "test_outputs", None):
        import torch

        from aecls.report.classification import write_classification_report

        out = Path(ckpt_path).resolve().parent.parent / "test"
        outputs = {k: torch.cat(v).numpy() for k, v in module.test_outputs.items()}
        paths = write_classification_report(outputs["probs"], outputs["targets"], dm.classes, out,
                                            title=f"{module.hparams.mode} classifier: {Path(ckpt_path).name}")
        print(f"  per-class report, confusion matrix, predictions: {', '.join(map(str, paths.values()))}")
    return results


def _data(args: argparse.Namespace) -> None:
    import numpy as np

    from aecls.data.idx import read_pair
    from aecls.data.locate import locate

    for split, paths in locate(args.dataset, args.data_dir, args.download).items():
        x, y = read_pair(*paths)
        counts = np.bincount(y, minlength=10)
        print(f"{split:5s} {len(x):6d} images, pixel mean {x.mean() / 255:.4f}, "
              f"{counts.min()}..{counts.max()} per class  ({paths[0]}, {paths[1]})")


def _report(args: argparse.Namespace) -> None:
    from aecls.report.build import build_report

    path = build_report(args.name, args.out, args.log_dir, args.artifacts, args.study, args.data_dir)
    print(f"report: {path}")


def _pipeline(args: argparse.Namespace) -> None:
    from aecls.pipeline import run_pipeline

    run_pipeline(args.full, args.fresh, args.data_dir)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="aecls", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    for name in LIGHTNING_COMMANDS:
        sub.add_parser(name, help=f"LightningCLI {name}: see `aecls {name} --help`", add_help=False)
    t = sub.add_parser("test", help="test metrics of an aecls checkpoint")
    t.add_argument("--ckpt", required=True, help="checkpoint written by `aecls fit` (or a study)")
    t.add_argument("--data-dir", help="IDX directory (default: where the checkpoint's data was found)")
    t.add_argument("--accelerator", default="auto", help="cpu, gpu or auto (default)")
    t.add_argument("--no-baselines", dest="baselines", action="store_false",
                   help="skip the reference numbers (PCA at the same latent dim for an AE, "
                        "the independent-pixel likelihood for a VAE)")
    t.set_defaults(func=_test)
    d = sub.add_parser("data", help="find, validate and summarise the IDX files")
    d.add_argument("--data-dir", help="directory with the four IDX files (default: search order)")
    d.add_argument("--dataset", default="fashion_mnist", choices=["fashion_mnist", "mnist"])
    d.add_argument("--download", action="store_true", help="allow torchvision's download")
    d.set_defaults(func=_data)
    from aecls.hpo.cli import add_study_parser
    from aecls.transfer_cli import add_transfer_parser

    add_study_parser(sub)
    add_transfer_parser(sub)
    r = sub.add_parser("report", help="build reports/NAME/report.md from logs, studies and artifacts")
    r.add_argument("--name", default="main", help="report folder name (default main)")
    r.add_argument("--study", default="cae_seed004", help="study whose plots and best.json to include")
    r.add_argument("--log-dir", default="lightning_logs")
    r.add_argument("--artifacts", default="artifacts")
    r.add_argument("--out", default="reports")
    r.add_argument("--data-dir", help="IDX directory (default: where the checkpoints' data was found)")
    r.set_defaults(func=_report)
    pl = sub.add_parser("pipeline", help="study -> best re-run -> fits -> transfer -> report, "
                                         "skipping finished stages")
    pl.add_argument("--full", action="store_true", help="the seed-report scale (hours on a CPU)")
    pl.add_argument("--fresh", action="store_true", help="delete earlier pipeline outputs first")
    pl.add_argument("--data-dir")
    pl.set_defaults(func=_pipeline)
    return p


def user_error(exc: BaseException) -> AeclsError | None:
    """The AeclsError behind `exc`, if any: jsonargparse wraps errors raised while it instantiates."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, AeclsError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] in LIGHTNING_COMMANDS:
            _lightning_cli(argv)
            return 0
        args = _parser().parse_args(argv)
        args.func(args)
    except Exception as e:
        if (err := user_error(e)) is None:
            raise
        print(f"aecls: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
