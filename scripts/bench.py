"""Side-by-side speed measurements, the helpers of scripts/benchmark.py and scripts/bench_*.py (which
import it as `bench`); tests/test_bench.py runs them on tiny data, asserting no number. It lives with
the scripts, not in the aecls package: nothing a user runs through aecls needs it.

Both sides of each comparison run in the same process, one after the other, on the same data, so
the ratio is meaningful on a noisy shared machine; numbers from different runs are not comparable.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

# torch, Lightning and aecls are imported in the helpers that use them: a process that only reads
# its memory peak (peak_rss_mib, tests/test_bench.py) does not pay seconds for them.


def images_per_second(make_epoch: Callable[[], Iterable], min_seconds: float = 2.0) -> float:
    """Iterate whole epochs (touching every batch) until `min_seconds` have passed; images/s."""
    n, start = 0, time.perf_counter()
    while True:
        for x, _ in make_epoch():
            n += len(x)
            float(x[0, 0, 0, 0])  # make sure the batch really exists (lazy/async backends)
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return n / elapsed


def torchvision_root(files: dict[str, tuple[Path, Path]], root: Path) -> Path:
    """A torchvision FashionMNIST root (`<root>/FashionMNIST/raw`, uncompressed) holding `files`."""
    from aecls.data.idx import read_bytes
    from aecls.data.locate import SPLIT_FILES

    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for split, paths in files.items():
        for stem, path in zip(SPLIT_FILES[split], paths, strict=True):
            (raw / stem).write_bytes(read_bytes(path))
    return root


def bench_data(data_dir: str | None = None, batch_size: int = 128, workers: int = 0,
               min_seconds: float = 3.0, val_size: int = 5000) -> dict[str, float]:
    """Training-epoch throughput: aecls's device-resident batches vs torchvision's DataLoader."""
    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms

    from aecls.data import FashionMNISTDataModule

    dm = FashionMNISTDataModule(data_dir=data_dir, batch_size=batch_size, val_size=val_size)
    dm.setup()
    ours = images_per_second(dm.train_dataloader, min_seconds)
    tmp = Path(tempfile.mkdtemp(prefix="aecls_bench_"))
    try:
        ds = datasets.FashionMNIST(str(torchvision_root(dm.files, tmp)), train=True,
                                   transform=transforms.ToTensor())
        loader = DataLoader(ds, batch_size=batch_size, shuffle=True, num_workers=workers)
        theirs = images_per_second(lambda: loader, min_seconds)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"aecls_device_batches": ours, "torchvision_dataloader": theirs, "ratio": ours / theirs}


def _plain_epoch(model, loader, opt) -> None:
    """One epoch of the textbook loop: the reference that Lightning's fit is measured against."""
    import torch
    import torch.nn.functional as F

    model.train()
    for x, _ in loader:
        opt.zero_grad(set_to_none=True)
        loss = F.mse_loss(torch.sigmoid(model.decoder(model.encoder(x))), x)
        loss.backward()
        opt.step()


# Lightning fits measured against the plain loop: name -> (Speed options, Trainer precision).
# "before" is the step as it was before the speed options (NCHW, Adam's per-parameter loop).
FIT_VARIANTS = {
    "before": ({"channels_last": "false", "fused_optimizer": "false"}, "32-true"),
    "channels_last": ({"channels_last": "true", "fused_optimizer": "false"}, "32-true"),
    "fused_adam": ({"channels_last": "false", "fused_optimizer": "true"}, "32-true"),
    "bf16": ({"channels_last": "false", "fused_optimizer": "false"}, "bf16-mixed"),
    "channels_last_bf16": ({"channels_last": "true", "fused_optimizer": "false"}, "bf16-mixed"),
    "default": ({}, "32-true"),
}


def bench_fit(n_channels: int, latent_dim: int = 14, data_dir: str | None = None, batch_size: int = 128,
              rounds: int = 2, limit_batches: int | None = None, val_size: int = 5000,
              device: str = "cpu", batch_norm: bool = True,
              variants: Iterable[str] = ("default",)) -> dict[str, float]:
    """One CAE training epoch: the plain PyTorch loop vs aecls's Lightning fit in each of
    `variants` (FIT_VARIANTS; "default" is what `aecls fit` does), alternating `rounds` times (best
    round of each kept, to reject interference), all on `device` (cpu or cuda) with the data
    resident there. The net is configs/cae.yaml's (BatchNorm, hidden 64) at width `n_channels`.
    Returns images/s of each side (`plain_loop`, `lightning_<variant>` for the epoch itself,
    `lightning_<variant>_fit_call` for the whole fit() call) and `ratio_<variant>` to the plain loop."""
    import torch

    from aecls.data import FashionMNISTDataModule
    from aecls.modules import AutoEncoder, OptimConfig
    from aecls.modules.speed import EpochTimes, Speed, sync
    from aecls.nets import NetConfig
    from aecls.training.train import TrainConfig, train
    from aecls.training.trainer import quiet_lightning

    quiet_lightning()  # no banners between the table's rows
    dm = FashionMNISTDataModule(data_dir=data_dir, batch_size=batch_size, val_size=val_size, device=device)
    dm.setup()
    n_batches = limit_batches or len(dm.train_dataloader())
    images = n_batches * batch_size
    net = NetConfig(latent_dim=latent_dim, n_channels=n_channels, batch_norm=batch_norm)
    optim = OptimConfig(lr=1e-3)

    def plain() -> float:
        torch.manual_seed(0)
        model = AutoEncoder(net, optim).to(device)
        opt = torch.optim.Adam(model.parameters(), lr=optim.lr)
        sync(device)
        start = time.perf_counter()
        _plain_epoch(model, itertools.islice(dm.train_dataloader(), n_batches), opt)
        sync(device)
        return images / (time.perf_counter() - start)

    def lightning(variant: str) -> tuple[float, float]:
        """(images/s of the epoch itself, images/s including Trainer.fit's start-up and tear-down)."""
        speed, precision = FIT_VARIANTS[variant]
        torch.manual_seed(0)
        model = AutoEncoder(net, optim)
        timer = EpochTimes(report=False)
        trainer = {"max_epochs": 1, "limit_train_batches": n_batches, "limit_val_batches": 0,
                   "precision": precision, "accelerator": "gpu" if device.startswith("cuda") else "cpu"}
        start = time.perf_counter()
        callbacks = [timer, Speed(**speed)]
        train(TrainConfig(model=model, data=dm, trainer=trainer, seed=None, callbacks=callbacks))
        return images / timer.seconds[-1], images / (time.perf_counter() - start)

    variants = list(variants)
    best = dict.fromkeys(["plain_loop", *(f"lightning_{v}{s}" for v in variants for s in ("", "_fit_call"))],
                         0.0)
    for _ in range(rounds):
        best["plain_loop"] = max(best["plain_loop"], plain())
        for v in variants:
            epoch, call = lightning(v)
            best[f"lightning_{v}"] = max(best[f"lightning_{v}"], epoch)
            best[f"lightning_{v}_fit_call"] = max(best[f"lightning_{v}_fit_call"], call)
    ratios = {f"ratio_{k.removeprefix('lightning_')}": v / best["plain_loop"]
              for k, v in best.items() if k.startswith("lightning_")}
    return {**best, **ratios}


def bench_study(study_file: str, n_trials: int, epochs: int, pruner: str, workers: int = 1,
                data_dir: str | None = None, trainer: dict | None = None) -> dict[str, float]:
    """Trials per minute of a study file's space, `n_trials` trials of `epochs` epochs, in a fresh
    storage (journal with workers > 1, else SQLite) in a temporary directory; `trainer` goes over
    the study's `trainer:` (e.g. a FIT_VARIANTS entry's speed options). Also the best value."""
    import os
    from dataclasses import replace

    from aecls.hpo.run import run_study
    from aecls.hpo.space import check_study, load_study

    base = load_study(study_file)
    spec = check_study(replace(base, epochs=epochs, pruner=pruner, name=f"bench_{pruner}_{workers}w",
                               trainer={**base.trainer, **(trainer or {})}))  # re-reads the config's defaults
    tmp = Path(tempfile.mkdtemp(prefix="aecls_bench_study_"))
    cwd = os.getcwd()
    try:
        os.chdir(tmp)
        storage = "journal:bench.journal" if workers > 1 else "sqlite:///bench.db"
        start = time.perf_counter()
        study = run_study(spec, n_trials, storage, workers=workers, data_dir=data_dir,
                          log_dir=str(tmp / "logs"), progress=False)
        minutes = (time.perf_counter() - start) / 60
        trials = study.get_trials(deepcopy=False)  # before the storage's folder is removed
        best = study.best_value if len(spec.metrics) == 1 else float("nan")
    finally:
        os.chdir(cwd)
        shutil.rmtree(tmp, ignore_errors=True)
    pruned = sum(t.state.name == "PRUNED" for t in trials)
    return {"trials": len(trials), "pruned": pruned, "minutes": minutes,
            "trials_per_min": len(trials) / minutes, "best": best}


def peak_rss_mib() -> dict[str, float]:
    """Peak resident memory of this process and of its (finished) children, in MiB."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"self": own, "children": kids}


def speed_parity(config: str = "cae", seeds: Iterable[int] = (0, 1, 2), epochs: int = 3,
                 variants: Iterable[str] = ("before", "default"), data_dir: str | None = None,
                 limit_batches: int | None = None) -> dict[str, dict[int, float]]:
    """Quality check of the speed options: the model config `config` (configs/<config>.yaml) trained
    `epochs` epochs per seed in each of `variants` (FIT_VARIANTS); returns variant -> seed ->
    best val/loss. A speed default may change only where these agree within seed noise."""
    import lightning as L

    from aecls.modules.speed import Speed
    from aecls.training.train import load_train_config, train
    from aecls.training.trainer import quiet_lightning

    class BestVal(L.Callback):
        """The lowest val/loss of a fit's epochs."""

        value = float("inf")

        def on_validation_end(self, trainer, pl_module) -> None:
            loss = trainer.callback_metrics.get("val/loss")
            if loss is not None and not trainer.sanity_checking:
                self.value = min(self.value, float(loss))

    quiet_lightning()
    out: dict[str, dict[int, float]] = {v: {} for v in variants}
    for seed in seeds:
        for v in variants:
            speed, precision = FIT_VARIANTS[v]
            cfg = load_train_config(config, data_dir=data_dir)
            best = BestVal()
            cfg.seed, cfg.logger, cfg.checkpoint, cfg.test = seed, False, None, None
            cfg.callbacks += [best, Speed(**speed)]
            cfg.trainer.update(max_epochs=epochs, precision=precision, limit_train_batches=limit_batches,
                               limit_val_batches=limit_batches)
            train(cfg)
            out[v][seed] = best.value
    return out


def stand_in_objective(trial, spec, data_dir=None, log_dir=None, artifacts=None) -> float:
    """A trial that trains nothing but does a real trial's bookkeeping: draws the study's space,
    reports `spec.epochs` intermediate values (so the pruner decides, and prunes some), records
    the user attrs the real objective records. Its value is a smooth function of the draws, so the
    sampler has something to model."""
    import math

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # in worker processes too: no log per trial
    params = spec.suggest(trial)
    trial.set_user_attr("seed", trial.number)
    numeric = [float(v) for v in params.values() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    score = 0.01 + sum((math.log10(abs(v) + 1e-9) % 1.0) ** 2 for v in numeric) / (1 + len(numeric))
    history = []
    for epoch in range(spec.epochs):
        history.append(score * (1 + 1 / (epoch + 1)))
        trial.report(history[-1], epoch)
        if trial.should_prune():
            trial.set_user_attr("epochs_run", epoch + 1)
            raise optuna.TrialPruned()
    for key, value in (("epochs_run", spec.epochs), ("history", {"val/loss": history}), ("seconds", 0.0),
                       ("checkpoint", ""), ("device", "cpu"), ("threads", 1)):
        trial.set_user_attr(key, value)
    return history[-1]


def bench_study_overhead(storage: str, n_trials: int, workers: int = 1,
                         study_file: str = "studies/quickstart.yaml", marks: Iterable[int] = (100, 1000),
                         window: int = 50) -> dict[int | str, float]:
    """Seconds of aecls's study bookkeeping per trial (sampler, pruner, storage, worker lock,
    user attrs; `stand_in_objective` trains nothing) around each of `marks` trials so far: the
    time between trial completions over the `window` trials before the mark, times `workers`
    (each worker spends that long per trial). Also "cpu": the CPU seconds aecls's processes (this
    one and its workers) spent per trial over the whole run: the part of a worker's time that is
    work, not waiting for a core or for the database (whose server's CPU is not in it). Runs in
    the current directory."""
    import resource
    from dataclasses import replace

    from aecls.hpo.run import run_study
    from aecls.hpo.space import check_study, load_study

    def cpu() -> float:
        return sum(r.ru_utime + r.ru_stime for r in (resource.getrusage(resource.RUSAGE_SELF),
                                                     resource.getrusage(resource.RUSAGE_CHILDREN)))

    spec = check_study(replace(load_study(study_file), name=f"overhead_{workers}w"))
    cpu_before = cpu()
    study = run_study(spec, n_trials, storage, workers=workers, progress=False, log_dir="logs",
                      objective_fn=stand_in_objective)
    cpu_spent = cpu() - cpu_before
    done = sorted(t.datetime_complete.timestamp() for t in study.get_trials(deepcopy=False)
                  if t.datetime_complete)
    out: dict[int | str, float] = {m: s * workers for m, s in per_trial_at(done, marks, window).items()}
    out["cpu"] = cpu_spent / max(1, len(done))
    return out


def per_trial_at(ends: list[float], marks: Iterable[int], window: int) -> dict[int, float]:
    """Seconds between consecutive trial ends (sorted timestamps), over the `window` trials before
    each mark that the run reached."""
    out = {}
    for mark in marks:
        if mark <= len(ends):
            lo = max(0, mark - window)
            out[mark] = (ends[mark - 1] - ends[lo]) / max(1, mark - 1 - lo)
    return out


def bench_sampler(tpe_args: dict, n_trials: int, study_file: str = "studies/quickstart.yaml",
                  marks: Iterable[int] = (100, 1000), window: int = 50) -> dict[int, float]:
    """Seconds per trial of the sampler and pruner alone (an in-memory study, no storage, no
    workers, `stand_in_objective`) around each of `marks` trials so far, with aecls's sampler given
    Optuna's TPE options `tpe_args` (as a study file's `sampler_args`)."""
    import time
    from dataclasses import replace

    import optuna

    from aecls.hpo.search import pruner_for, sampler_for
    from aecls.hpo.space import check_study, load_study

    spec = check_study(replace(load_study(study_file), sampler_args=tpe_args))
    study = optuna.create_study(sampler=sampler_for(spec.seed, spec.sampler_args),
                                pruner=pruner_for(spec.pruner, spec.pruner_args, spec.epochs))
    ends = []
    for _ in range(n_trials):
        study.optimize(lambda t: stand_in_objective(t, spec), n_trials=1)
        ends.append(time.perf_counter())
    return per_trial_at(ends, marks, window)
