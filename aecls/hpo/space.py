"""A study file's checks and its model side: `check_study` refuses, before any trial runs, what
the study file (aecls.hpo.spec) says that no trial could train; `model_config` is a trial's model.

Space names are the fields of NetConfig (latent_dim, n_channels, hidden, batch_norm, arch,
dropout, mlp_widths) and OptimConfig (optimizer -> name, lr, weight_decay, momentum, scheduler),
plus the keys the model's family declares (`Family.study_keys`: noise_sigma for the DAE, beta for
the VAE, ...). Whatever the space leaves out comes from the family's config (`configs/<model>.yaml`,
or `config:`), so a study trains the model `aecls fit --config` trains.
"""

from __future__ import annotations

import inspect
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from optuna.distributions import CategoricalDistribution

from aecls.core.constants import LOSS_METRIC, PROBE_METRIC
from aecls.core.errors import AeclsError, check
from aecls.core.paths import find_config, read_config
from aecls.data import FashionMNISTDataModule
from aecls.hpo.search import pruner_for, sampler_for
from aecls.hpo.spec import (
    OBJECTIVES,
    PRUNERS,
    TRAINER_DEFAULTS,
    StudyFileNotFound,
    StudySpec,
    distribution,
    locate_study,
    read_study,
)
from aecls.modules import OptimConfig
from aecls.modules.speed import SPEED_KEYS, parse_switch
from aecls.nets import NetConfig
from aecls.training.train import build_module
from aecls.training.trainer import make_trainer

__all__ = ["StudyFileNotFound", "StudySpec", "check_study", "load_study", "model_config"]

NET_KEYS = {f.name for f in fields(NetConfig)}
OPTIM_KEYS = {f.name for f in fields(OptimConfig)} | {"optimizer"}
# Trainer arguments a study may set; a trial uses one device unless the study asks for more.
# `deterministic: true` makes GPU trials bit-reproducible at some speed (RESULTS.md, Reproducibility);
# the speed options (aecls.modules.speed: channels_last, fused_optimizer) go to make_trainer beside them.
TRAINER_KEYS = {"accelerator", "devices", "strategy", "precision", "deterministic", *SPEED_KEYS}


def check_study(spec: StudySpec) -> StudySpec:
    """The study checked before any trial runs (each error names the study and the entry), as
    a new spec: its trainer settings normalised, its model config's defaults and data filled in."""
    for key in ("epochs", "n_trials", "seed"):
        value = getattr(spec, key)
        check(isinstance(value, int) and not isinstance(value, bool),
              f"study {spec.name}: {key} must be a whole number, got {value!r}")
    fam = spec.family
    check(spec.epochs >= 1, f"study {spec.name}: epochs must be >= 1")
    check(isinstance(spec.train_fraction, (int, float)) and not isinstance(spec.train_fraction, bool)
          and 0 < spec.train_fraction <= 1, f"study {spec.name}: train_fraction must be in (0, 1] "
          f"(the share of each epoch's training batches), got {spec.train_fraction!r}")
    check(spec.n_trials >= 1, f"study {spec.name}: n_trials must be >= 1")
    check(spec.pruner in PRUNERS, f"study {spec.name}: pruner must be one of {list(PRUNERS)}")
    check(spec.objective in OBJECTIVES,
          f"study {spec.name}: objective must be one of {list(OBJECTIVES)}, got {spec.objective!r}")
    _check_comparable(spec)
    _check_builds(spec, lambda: pruner_for(spec.pruner, spec.pruner_args, spec.epochs),
                       f"pruner_args {spec.pruner_args}", f"the {spec.pruner} pruner")
    check("seed" not in spec.sampler_args,
          f"study {spec.name}: sampler_args cannot set TPE's seed: it derives from the study's `seed`")
    _check_builds(spec, lambda: sampler_for(spec.seed, spec.sampler_args),
                       f"sampler_args {spec.sampler_args}", "Optuna's TPESampler")
    check(spec.objective != "multi" or spec.pruner == "none",
          f"study {spec.name}: Optuna cannot prune multi-objective trials; set `pruner: none` "
          "(and keep epochs modest)")
    check(spec.objective == "recon" or fam.has_encoder,
          f"study {spec.name}: objective {spec.objective} probes an encoder's code; model "
          f"{spec.model} ({fam.kind}) has none that transfers: use objective recon")
    known = NET_KEYS | OPTIM_KEYS | fam.study_keys
    unknown = sorted(set(spec.space) - known)
    check(not unknown, f"study {spec.name}: unknown search-space names {unknown} for model "
          f"{spec.model}; known: {sorted(known)}")
    for name, entry in spec.space.items():
        if isinstance(entry, dict):
            distribution(spec.name, name, entry)
    spec = replace(spec, trainer=_checked_trainer(spec))
    _check_devices(spec)
    spec = _with_config_defaults(spec)
    _check_data(spec)
    _check_values(spec)
    return spec


def _check_comparable(spec: StudySpec) -> None:
    """A study that compares val/loss may not search a key that changes what val/loss is (a
    loss choice, a loss weight, the input noise): its trials would be ranked by different
    quantities (Family.loss_keys)."""
    if LOSS_METRIC not in spec.metrics:
        return
    fam, keys = spec.family, spec.searched_loss_keys
    if keys:
        other = fam.score if fam.score != LOSS_METRIC else None
        instead = (f"objective recon (compares {other}, which {keys[0]} does not change)"
                   if other and spec.objective == "loss" else
                   "objective probe" if other == PROBE_METRIC else f"one value of {keys[0]}")
        raise AeclsError(f"study {spec.name}: search-space entry {keys[0]} changes val/loss, which "
                         f"objective {spec.objective} compares, so its trials would be ranked by "
                         f"different quantities; use {instead}")


def _check_data(spec: StudySpec) -> None:
    """The `data:` keys build the DataModule (no data is read): a typo is an error now, not
    a failure of every trial."""
    try:
        FashionMNISTDataModule(**{k: v for k, v in spec.data.items() if k != "data_dir"})
    except TypeError as e:
        known = sorted(set(inspect.signature(FashionMNISTDataModule).parameters) - {"data_dir"})
        raise AeclsError(f"study {spec.name}: data: {e} (known keys: {known})") from e
    except AeclsError as e:
        raise AeclsError(f"study {spec.name}: data: {e}") from e


def _check_values(spec: StudySpec) -> None:
    """Every value a trial can draw must make a valid module (net, optimiser, loss, ...) with
    the config's values and the space's fixed ones: each categorical choice and each bound of
    a range is built once now, so a bad one is an error before the first trial, naming the
    entry."""
    fixed = {k: v for k, v in spec.space.items() if not isinstance(v, dict)}
    candidates: list[tuple[str, dict[str, Any]]] = [("", fixed)]
    for name, entry in spec.space.items():
        if isinstance(entry, dict):
            d = distribution(spec.name, name, entry)
            values = d.choices if isinstance(d, CategoricalDistribution) else (d.low, d.high)
            candidates += [(f"search-space entry {name}={v!r}: ", {**fixed, name: v}) for v in values]
    for where, params in candidates:
        try:
            module = build_module(model_config(spec, params))
        except (TypeError, AeclsError) as e:
            raise AeclsError(f"study {spec.name}: {where}{e}") from e
        # A schedule longer than a trial (a KL warm-up, a frozen start) is an error, not a line
        # in the summary: every trial would train at settings other than those it is scored and
        # named by, and a summary is read after the hours were spent.
        for arg, needs in module.schedule_epochs().items():
            if not where and arg in spec.space and arg not in fixed:
                continue  # searched: checked at its bounds
            source = where or ("the space: " if arg in fixed else f"{_config_path(spec).name}: ")
            check(needs <= spec.epochs,
                  f"study {spec.name}: {source}{arg} {module.hparams[arg]} needs {needs} epochs to "
                  f"run its course and a trial has epochs {spec.epochs}: its trials would never "
                  f"train at the settings they are scored at; set {arg} in the space (at most "
                  f"{spec.epochs - needs + module.hparams[arg]}) or raise epochs")


def _checked_trainer(spec: StudySpec) -> dict[str, Any]:
    """The `trainer:` settings checked, with their defaults and the speed switches parsed."""
    unknown = sorted(set(spec.trainer) - TRAINER_KEYS)
    check(not unknown,
          f"study {spec.name}: unknown trainer keys {unknown}; known: {sorted(TRAINER_KEYS)}")
    trainer = {**TRAINER_DEFAULTS, **spec.trainer}
    for key in SPEED_KEYS:
        if key in trainer:
            try:
                trainer[key] = parse_switch(key, trainer[key])
            except AeclsError as e:
                raise AeclsError(f"study {spec.name}: trainer.{e}") from e
    return trainer


def _check_devices(spec: StudySpec) -> None:
    devices = spec.trainer["devices"]
    check(isinstance(devices, int) and devices >= 1,
          f"study {spec.name}: trainer.devices must be a number >= 1, got {devices!r}")
    strategy = str(spec.trainer.get("strategy", ""))
    check(strategy != "ddp", f"study {spec.name}: trainer.strategy ddp re-runs the whole command "
          "once per device; a study's trials use ddp_spawn")
    try:  # the Trainer's own checks (precision, strategy, ...), without data or a fit
        make_trainer(1, **spec.trainer)
    except Exception as e:
        # A GPU study read on a host without one (`study plots` on a laptop) is no mistake.
        if "not available" not in str(e) and "CUDA" not in str(e):
            raise AeclsError(f"study {spec.name}: trainer: {type(e).__name__}: {e}") from e
    if spec.distributed:
        check(len(spec.metrics) == 1, f"study {spec.name}: a multi-device trial is pruned through "
              "Optuna's DDP pruning callback, which needs a single objective (recon or probe)")


def _config_path(spec: StudySpec) -> Path:
    return find_config(spec.config or spec.family.config_name)


def _with_config_defaults(spec: StudySpec) -> StudySpec:
    """This spec with its model config's init_args as `defaults`, and the config's data
    settings (batch size, split) under the study's own `data:`."""
    path = _config_path(spec)
    cfg = read_config(path)
    model = cfg["model"]
    cls = spec.family.module
    check(str(model.get("class_path", "")).rsplit(".", 1)[-1] == cls.__name__,
          f"study {spec.name}: {path} configures {model.get('class_path')}, not {cls.__name__} "
          f"(model {spec.model})")
    data = {k: v for k, v in cfg["data"].items() if k != "data_dir"}
    return replace(spec, defaults=dict(model.get("init_args") or {}), data={**data, **spec.data})


def _check_builds(spec: StudySpec, build, given: str, what: str) -> None:
    """Optuna's own check of keyword arguments from the study file, as one line naming them."""
    try:
        build()
    except (TypeError, ValueError) as e:
        raise AeclsError(f"study {spec.name}: {given} do not fit {what} ({e})") from e


def configs(spec: StudySpec, params: dict[str, Any]) -> tuple[dict, dict, dict]:
    """(net, optim, other module arguments): the model config's init_args with `params` on top."""
    base = dict(spec.defaults)
    net = {**(base.pop("net", None) or {}), **{k: v for k, v in params.items() if k in NET_KEYS}}
    optim = {**(base.pop("optim", None) or {}), **{k: v for k, v in params.items() if k in OPTIM_KEYS}}
    if "optimizer" in optim:
        optim["name"] = optim.pop("optimizer")
    return net, optim, {**base, **{k: v for k, v in params.items() if k in spec.family.study_keys}}


def model_config(spec: StudySpec, params: dict[str, Any]) -> dict[str, Any]:
    """`TrainConfig.model` of a trial: the family and its init arguments."""
    net, optim, extra = configs(spec, params)
    return {"family": spec.model, "init_args": {"net": NetConfig(**net), "optim": OptimConfig(**optim),
                                                **extra}}


def load_study(path: str | Path) -> StudySpec:
    """Read (aecls.hpo.spec.read_study) and check a study file; a name without a path is looked up
    in ./studies/."""
    spec = read_study(path)
    try:
        return check_study(spec)
    except AeclsError as e:  # name the file as well as the study
        raise AeclsError(f"{locate_study(path)}: {e}") from e
