"""A study file (studies/*.yaml) read once into a typed `StudySpec`, and its search space.

A space entry is either a fixed value (`scheduler: onecycle`) or a distribution:
`{type: int|float, low, high, log, step}` or `{type: categorical, choices: [...]}`. Names are the
fields of NetConfig (latent_dim, n_channels, hidden, batch_norm, arch, dropout, mlp_widths) and
OptimConfig (optimizer -> name, lr, weight_decay, momentum, scheduler), plus the keys the model's
family declares (`Family.study_keys`: noise_sigma for the DAE, beta for the VAE, ...). Whatever
the space leaves out comes from the family's config (`configs/<model>.yaml`, or `config:`), so a
study trains the model `aecls fit --config` trains.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import optuna
import yaml
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from aecls.core.constants import LOSS_METRIC, PROBE_METRIC
from aecls.core.errors import AeclsError, check
from aecls.core.paths import find_config, read_config
from aecls.data import FashionMNISTDataModule
from aecls.hpo.search import pruner_for, sampler_for
from aecls.modules import OptimConfig
from aecls.modules.registry import Family, family
from aecls.modules.speed import SPEED_KEYS, parse_switch
from aecls.nets import NetConfig
from aecls.training.train import build_module
from aecls.training.trainer import make_trainer

NET_KEYS = {f.name for f in fields(NetConfig)}
OPTIM_KEYS = {f.name for f in fields(OptimConfig)} | {"optimizer"}
# What a trial returns (StudySpec.metrics): `recon` the family's score (Family.score: a number that
# means the same for every value the space can draw: a VAE's ELBO, an autoencoder's MSE on clean
# images, a pretext's probe accuracy), `loss` val/loss (the training loss: refused where the space
# searches a key that changes it), `probe` the linear-probe accuracy of the frozen latents on
# validation images (aecls.training.probe), `multi` the score and the probe (a pretext, whose score is the
# probe: val/loss and the probe).
OBJECTIVES = ("recon", "loss", "probe", "multi")
DIRECTIONS = {LOSS_METRIC: "minimize", PROBE_METRIC: "maximize"}
PRUNERS = ("median", "hyperband", "threshold", "none")
# The keys a distribution entry may have, by type (Optuna's suggest_* arguments).
ENTRY_KEYS = {"int": {"low", "high", "log", "step"}, "float": {"low", "high", "log", "step"},
              "categorical": {"choices"}}
ENTRY_NEEDS = {"int": {"low", "high"}, "float": {"low", "high"}, "categorical": {"choices"}}
# Trainer arguments a study may set; a trial uses one device unless the study asks for more.
# `deterministic: true` makes GPU trials bit-reproducible at some speed (RESULTS.md, Reproducibility);
# the speed options (aecls.modules.speed: channels_last, fused_optimizer) go to make_trainer beside them.
TRAINER_KEYS = {"accelerator", "devices", "strategy", "precision", "deterministic", *SPEED_KEYS}
TRAINER_DEFAULTS = {"devices": 1}
# What a continued study must share with the run that created it (n_trials, pruner, trainer and
# storage may change between runs: they change how, not what, is searched).
FINGERPRINT_KEYS = ("model", "epochs", "objective", "seed", "data", "space", "defaults")


@dataclass(frozen=True)
class StudySpec:
    """A study file as data (`load_study` reads and checks it; `validate` returns the checked spec,
    the model config's defaults and data settings filled in, and changes nothing in place)."""

    name: str
    model: str = "cae"
    config: str | None = None  # model config the space's defaults come from (default configs/<model>.yaml)
    epochs: int = 10
    # the share of each epoch's training batches a trial (and its re-run) trains on: < 1 for a quick
    # look at a study (Lightning's limit_train_batches); recorded, so a continued study keeps it
    train_fraction: float = 1.0
    objective: str = "recon"  # recon | probe | multi (see OBJECTIVES)
    pruner: str = "median"  # median | hyperband | threshold | none (multi: none, Optuna cannot prune it)
    pruner_args: dict[str, Any] = field(default_factory=dict)  # keyword arguments of that pruner
    sampler_args: dict[str, Any] = field(default_factory=dict)  # Optuna's TPESampler options (not seed)
    seed: int = 0  # the study's seed: TPE's draws and every trial's training seed derive from it
    n_trials: int = 20
    data: dict[str, Any] = field(default_factory=dict)  # FashionMNISTDataModule arguments
    trainer: dict[str, Any] = field(default_factory=dict)  # Trainer arguments: see TRAINER_KEYS
    space: dict[str, Any] = field(default_factory=dict)
    # The model config's model.init_args (net, optim, loss, ...): what the space does not set
    # (filled in by `validate`, not read from the study file).
    defaults: dict[str, Any] = field(default_factory=dict)
    file: str | None = None  # the study file's absolute path (load_study)

    def validate(self) -> StudySpec:
        for key in ("epochs", "n_trials", "seed"):
            value = getattr(self, key)
            check(isinstance(value, int) and not isinstance(value, bool),
                  f"study {self.name}: {key} must be a whole number, got {value!r}")
        fam = self.family
        check(self.epochs >= 1, f"study {self.name}: epochs must be >= 1")
        check(isinstance(self.train_fraction, (int, float)) and not isinstance(self.train_fraction, bool)
              and 0 < self.train_fraction <= 1, f"study {self.name}: train_fraction must be in (0, 1] "
              f"(the share of each epoch's training batches), got {self.train_fraction!r}")
        check(self.n_trials >= 1, f"study {self.name}: n_trials must be >= 1")
        check(self.pruner in PRUNERS, f"study {self.name}: pruner must be one of {list(PRUNERS)}")
        check(self.objective in OBJECTIVES,
              f"study {self.name}: objective must be one of {list(OBJECTIVES)}, got {self.objective!r}")
        self._check_comparable()
        self._check_builds(lambda: pruner_for(self.pruner, self.pruner_args, self.epochs),
                           f"pruner_args {self.pruner_args}", f"the {self.pruner} pruner")
        check("seed" not in self.sampler_args,
              f"study {self.name}: sampler_args cannot set TPE's seed: it derives from the study's `seed`")
        self._check_builds(lambda: sampler_for(self.seed, self.sampler_args),
                           f"sampler_args {self.sampler_args}", "Optuna's TPESampler")
        check(self.objective != "multi" or self.pruner == "none",
              f"study {self.name}: Optuna cannot prune multi-objective trials; set `pruner: none` "
              "(and keep epochs modest)")
        check(self.objective == "recon" or fam.has_encoder,
              f"study {self.name}: objective {self.objective} probes an encoder's code; model "
              f"{self.model} ({fam.kind}) has none that transfers: use objective recon")
        known = NET_KEYS | OPTIM_KEYS | fam.study_keys
        unknown = sorted(set(self.space) - known)
        check(not unknown, f"study {self.name}: unknown search-space names {unknown} for model "
              f"{self.model}; known: {sorted(known)}")
        for name, entry in self.space.items():
            if isinstance(entry, dict):
                distribution(self.name, name, entry)
        spec = replace(self, trainer=self._checked_trainer())
        spec._check_devices()
        spec = spec._with_config_defaults()
        spec._check_data()
        spec._check_values()
        return spec

    def _check_comparable(self) -> None:
        """A study that compares val/loss may not search a key that changes what val/loss is (a
        loss choice, a loss weight, the input noise): its trials would be ranked by different
        quantities (Family.loss_keys)."""
        if LOSS_METRIC not in self.metrics:
            return
        fam, keys = self.family, self.searched_loss_keys
        if keys:
            other = fam.score if fam.score != LOSS_METRIC else None
            instead = (f"objective recon (compares {other}, which {keys[0]} does not change)"
                       if other and self.objective == "loss" else
                       "objective probe" if other == PROBE_METRIC else f"one value of {keys[0]}")
            raise AeclsError(f"study {self.name}: search-space entry {keys[0]} changes val/loss, which "
                             f"objective {self.objective} compares, so its trials would be ranked by "
                             f"different quantities; use {instead}")

    def _check_data(self) -> None:
        """The `data:` keys build the DataModule (no data is read): a typo is an error now, not
        a failure of every trial."""
        try:
            FashionMNISTDataModule(**{k: v for k, v in self.data.items() if k != "data_dir"})
        except TypeError as e:
            known = sorted(set(inspect.signature(FashionMNISTDataModule).parameters) - {"data_dir"})
            raise AeclsError(f"study {self.name}: data: {e} (known keys: {known})") from e
        except AeclsError as e:
            raise AeclsError(f"study {self.name}: data: {e}") from e

    def _check_values(self) -> None:
        """Every value a trial can draw must make a valid module (net, optimiser, loss, ...) with
        the config's values and the space's fixed ones: each categorical choice and each bound of
        a range is built once now, so a bad one is an error before the first trial, naming the
        entry."""
        fixed = {k: v for k, v in self.space.items() if not isinstance(v, dict)}
        candidates: list[tuple[str, dict[str, Any]]] = [("", fixed)]
        for name, entry in self.space.items():
            if isinstance(entry, dict):
                d = distribution(self.name, name, entry)
                values = d.choices if isinstance(d, CategoricalDistribution) else (d.low, d.high)
                candidates += [(f"search-space entry {name}={v!r}: ", {**fixed, name: v}) for v in values]
        for where, params in candidates:
            try:
                module = build_module(self.model_config(params))
            except (TypeError, AeclsError) as e:
                raise AeclsError(f"study {self.name}: {where}{e}") from e
            # A schedule longer than a trial (a KL warm-up, a frozen start) is an error, not a line
            # in the summary: every trial would train at settings other than those it is scored and
            # named by, and a summary is read after the hours were spent.
            for arg, needs in module.schedule_epochs().items():
                if not where and arg in self.space and arg not in fixed:
                    continue  # searched: checked at its bounds
                source = where or ("the space: " if arg in fixed else f"{self._config_path().name}: ")
                check(needs <= self.epochs,
                      f"study {self.name}: {source}{arg} {module.hparams[arg]} needs {needs} epochs to "
                      f"run its course and a trial has epochs {self.epochs}: its trials would never "
                      f"train at the settings they are scored at; set {arg} in the space (at most "
                      f"{self.epochs - needs + module.hparams[arg]}) or raise epochs")

    def _checked_trainer(self) -> dict[str, Any]:
        """The `trainer:` settings checked, with their defaults and the speed switches parsed."""
        unknown = sorted(set(self.trainer) - TRAINER_KEYS)
        check(not unknown,
              f"study {self.name}: unknown trainer keys {unknown}; known: {sorted(TRAINER_KEYS)}")
        trainer = {**TRAINER_DEFAULTS, **self.trainer}
        for key in SPEED_KEYS:
            if key in trainer:
                try:
                    trainer[key] = parse_switch(key, trainer[key])
                except AeclsError as e:
                    raise AeclsError(f"study {self.name}: trainer.{e}") from e
        return trainer

    def _check_devices(self) -> None:
        devices = self.trainer["devices"]
        check(isinstance(devices, int) and devices >= 1,
              f"study {self.name}: trainer.devices must be a number >= 1, got {devices!r}")
        strategy = str(self.trainer.get("strategy", ""))
        check(strategy != "ddp", f"study {self.name}: trainer.strategy ddp re-runs the whole command "
              "once per device; a study's trials use ddp_spawn")
        try:  # the Trainer's own checks (precision, strategy, ...), without data or a fit
            make_trainer(1, **self.trainer)
        except Exception as e:
            # A GPU study read on a host without one (`study plots` on a laptop) is no mistake.
            if "not available" not in str(e) and "CUDA" not in str(e):
                raise AeclsError(f"study {self.name}: trainer: {type(e).__name__}: {e}") from e
        if self.distributed:
            check(len(self.metrics) == 1, f"study {self.name}: a multi-device trial is pruned through "
                  "Optuna's DDP pruning callback, which needs a single objective (recon or probe)")

    def _config_path(self) -> Path:
        return find_config(self.config or self.family.config_name)

    def _with_config_defaults(self) -> StudySpec:
        """This spec with its model config's init_args as `defaults`, and the config's data
        settings (batch size, split) under the study's own `data:`."""
        path = self._config_path()
        cfg = read_config(path)
        model = cfg["model"]
        cls = self.family.module
        check(str(model.get("class_path", "")).rsplit(".", 1)[-1] == cls.__name__,
              f"study {self.name}: {path} configures {model.get('class_path')}, not {cls.__name__} "
              f"(model {self.model})")
        data = {k: v for k, v in cfg["data"].items() if k != "data_dir"}
        return replace(self, defaults=dict(model.get("init_args") or {}), data={**data, **self.data})

    def _check_builds(self, build, given: str, what: str) -> None:
        """Optuna's own check of keyword arguments from the study file, as one line naming them."""
        try:
            build()
        except (TypeError, ValueError) as e:
            raise AeclsError(f"study {self.name}: {given} do not fit {what} ({e})") from e

    @property
    def family(self) -> Family:
        return family(self.model, where=f"study {self.name}: model")

    @property
    def metrics(self) -> tuple[str, ...]:
        """What a trial returns, in order (see OBJECTIVES)."""
        score = self.family.score
        return {"recon": (score,), "loss": (LOSS_METRIC,), "probe": (PROBE_METRIC,),
                "multi": (LOSS_METRIC if score == PROBE_METRIC else score, PROBE_METRIC)}[self.objective]

    @property
    def searched_loss_keys(self) -> list[str]:
        """The space's searched keys that change val/loss (Family.loss_keys)."""
        return sorted(k for k, e in self.space.items() if isinstance(e, dict) and k in self.family.loss_keys)

    def direction(self, metric: str) -> str:
        """"minimize" or "maximize": how `metric` ranks trials."""
        fam = self.family
        if metric == fam.score:
            return "maximize" if fam.maximize else "minimize"
        return DIRECTIONS[metric]

    @property
    def directions(self) -> list[str]:
        return [self.direction(m) for m in self.metrics]

    @property
    def uses_probe(self) -> bool:
        return PROBE_METRIC in self.metrics

    @property
    def distributed(self) -> bool:
        """Does a trial train on several devices (DDP)?"""
        return self.trainer["devices"] > 1 or "ddp" in str(self.trainer.get("strategy", ""))

    def fingerprint(self) -> dict[str, Any]:
        """What a continued study must not change (stored in the study as user attr `spec`); the
        train fraction only where it is below 1, so a study recorded before it existed continues."""
        keys = (*FINGERPRINT_KEYS, *(("train_fraction",) if self.train_fraction < 1 else ()))
        return yaml.safe_load(yaml.safe_dump({k: getattr(self, k) for k in keys}))

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        """Draw (or fix) every parameter of the space for `trial`."""
        params = {}
        for name, entry in self.space.items():
            fixed = not isinstance(entry, dict)
            params[name] = entry if fixed else _suggest(trial, name, distribution(self.name, name, entry))
        return params

    def configs(self, params: dict[str, Any]) -> tuple[dict, dict, dict]:
        """(net, optim, other module arguments): the model config's init_args with `params` on top."""
        base = dict(self.defaults)
        net = {**(base.pop("net", None) or {}), **{k: v for k, v in params.items() if k in NET_KEYS}}
        optim = {**(base.pop("optim", None) or {}), **{k: v for k, v in params.items() if k in OPTIM_KEYS}}
        if "optimizer" in optim:
            optim["name"] = optim.pop("optimizer")
        return net, optim, {**base, **{k: v for k, v in params.items() if k in self.family.study_keys}}

    def model_config(self, params: dict[str, Any]) -> dict[str, Any]:
        """`TrainConfig.model` of a trial: the family and its init arguments."""
        net, optim, extra = self.configs(params)
        return {"family": self.model, "init_args": {"net": NetConfig(**net), "optim": OptimConfig(**optim),
                                                    **extra}}

def distribution(study: str, name: str, entry: dict[str, Any]) -> BaseDistribution:
    """The Optuna distribution of a space entry; an unknown, missing or malformed key is an error
    naming the entry."""
    kind = entry.get("type")
    where = f"study {study}: search-space entry {name}"
    check(kind in ENTRY_KEYS, f"{where}: type must be int, float or categorical, got {kind!r}")
    args = {k: v for k, v in entry.items() if k != "type"}
    unknown = sorted(set(args) - ENTRY_KEYS[kind])
    check(not unknown, f"{where}: unknown key(s) {unknown} for type {kind}; "
          f"known: {sorted(ENTRY_KEYS[kind])}")
    check(ENTRY_NEEDS[kind] <= set(args), f"{where} ({kind}) needs {sorted(ENTRY_NEEDS[kind])}")
    try:
        if kind == "categorical":
            check(isinstance(args["choices"], list) and args["choices"],
                  f"{where}: choices must be a non-empty list")
            return CategoricalDistribution(args["choices"])
        cls, cast = (IntDistribution, int) if kind == "int" else (FloatDistribution, float)
        step = args.get("step")
        return cls(cast(args["low"]), cast(args["high"]), log=bool(args.get("log", False)),
                   step=None if step is None and kind == "float" else cast(step if step is not None else 1))
    except (ValueError, TypeError) as e:
        raise AeclsError(f"{where}: {e}") from e


def _suggest(trial: optuna.Trial, name: str, d: BaseDistribution) -> Any:
    """Draw `name` from its space entry's Optuna distribution (built, and checked, by `distribution`)."""
    if isinstance(d, IntDistribution):
        return trial.suggest_int(name, d.low, d.high, step=d.step, log=d.log)
    if isinstance(d, FloatDistribution):
        return trial.suggest_float(name, d.low, d.high, step=d.step, log=d.log)
    return trial.suggest_categorical(name, d.choices)


def load_study(path: str | Path) -> StudySpec:
    """Read and validate a study file; a name without a path is looked up in ./studies/."""
    path = Path(path)
    if not path.exists() and (Path("studies") / f"{path}.yaml").exists():
        path = Path("studies") / f"{path}.yaml"
    if not path.is_file():
        tried = [str(path), *([str(Path("studies") / f"{path}.yaml")] if path.suffix == "" else [])]
        raise StudyFileNotFound(f"study file not found: tried {', '.join(tried)}")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise AeclsError(f"{path}: not valid YAML ({e})") from e
    check(isinstance(raw, dict), f"{path}: a study file is a mapping of keys, got {type(raw).__name__}")
    known = [f.name for f in fields(StudySpec) if f.name not in ("defaults", "file")]
    unknown = sorted(set(raw) - set(known))
    check(not unknown, f"{path}: unknown key(s) {unknown}; known: {known}")
    raw.setdefault("name", path.stem)
    for key in ("data", "trainer", "space", "pruner_args", "sampler_args"):
        check(isinstance(raw.get(key) or {}, dict), f"{path}: `{key}:` must be a mapping")
        raw[key] = raw.get(key) or {}
    try:
        spec = StudySpec(**raw).validate()
    except AeclsError as e:  # name the file as well as the study
        raise AeclsError(f"{path}: {e}") from e
    return replace(spec, file=str(path.resolve()))


class StudyFileNotFound(AeclsError):
    """No study file at that path or name (a study's storage may know where it is)."""
