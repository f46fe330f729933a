"""A study file (studies/*.yaml) read once into a typed `StudySpec`, and its search space.

A space entry is either a fixed value (`scheduler: onecycle`) or a distribution:
`{type: int|float, low, high, log}` or `{type: categorical, choices: [...]}`. Names are the
fields of NetConfig (latent_dim, n_channels, hidden, batch_norm) and OptimConfig (optimizer ->
name, lr, weight_decay, momentum, scheduler), plus noise_sigma / beta for the DAE / VAE.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import optuna
import yaml

from aecls.errors import AeclsError, check
from aecls.modules import VAE, AutoEncoder, BaseModule, OptimConfig
from aecls.nets import NetConfig
from aecls.probe import PROBE_METRIC

MODELS = {"cae": AutoEncoder, "dae": AutoEncoder, "vae": VAE}
NET_KEYS = {f.name for f in fields(NetConfig)}
OPTIM_KEYS = {f.name for f in fields(OptimConfig)} | {"optimizer"}
MODULE_KEYS = {"cae": {"loss", "noise_sigma"}, "dae": {"loss", "noise_sigma"},
               "vae": {"beta", "kl_warmup_epochs"}}
# What a trial returns, in order; `probe` is the linear-probe accuracy of the frozen latents on
# validation images (aecls.probe), `multi` returns both.
OBJECTIVES = {"recon": ("val/loss",), "probe": (PROBE_METRIC,), "multi": ("val/loss", PROBE_METRIC)}
DIRECTIONS = {"val/loss": "minimize", PROBE_METRIC: "maximize"}


@dataclass
class StudySpec:
    name: str
    model: str = "cae"
    epochs: int = 10
    objective: str = "recon"  # recon | probe | multi (see OBJECTIVES)
    pruner: str = "median"  # median | hyperband | none (multi: none, Optuna cannot prune it)
    pruner_args: dict[str, Any] = field(default_factory=dict)  # keyword arguments of that pruner
    sampler_seed: int = 0
    n_trials: int = 20
    data: dict[str, Any] = field(default_factory=dict)  # FashionMNISTDataModule arguments
    space: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> StudySpec:
        check(self.model in MODELS, f"study {self.name}: model must be one of {sorted(MODELS)}")
        check(self.epochs >= 1, f"study {self.name}: epochs must be >= 1")
        check(self.pruner in ("median", "hyperband", "none"),
              f"study {self.name}: pruner must be median, hyperband or none")
        check(self.objective in OBJECTIVES,
              f"study {self.name}: objective must be one of {list(OBJECTIVES)}, got {self.objective!r}")
        try:
            self.build_pruner()
        except TypeError as e:
            raise AeclsError(f"study {self.name}: pruner_args {self.pruner_args} do not fit the "
                             f"{self.pruner} pruner ({e})") from e
        check(self.objective != "multi" or self.pruner == "none",
              f"study {self.name}: Optuna cannot prune multi-objective trials; set `pruner: none` "
              "(and keep epochs modest)")
        known = NET_KEYS | OPTIM_KEYS | MODULE_KEYS[self.model]
        unknown = sorted(set(self.space) - known)
        check(not unknown, f"study {self.name}: unknown search-space names {unknown}; known: {sorted(known)}")
        for name, dist in self.space.items():
            if isinstance(dist, dict):
                kind = dist.get("type")
                need = {"int": {"low", "high"}, "float": {"low", "high"}, "categorical": {"choices"}}
                check(kind in need, f"study {self.name}: search-space entry {name}: type must be int, "
                      f"float or categorical, got {kind!r}")
                check(need[kind] <= set(dist), f"study {self.name}: search-space entry {name} "
                      f"({kind}) needs {sorted(need[kind])}")
        return self

    def build_pruner(self) -> optuna.pruners.BasePruner:
        """Median by default: it waits for 3 finished trials, then stops a trial whose epoch score
        is worse than the median of earlier trials at the same epoch, from the first epoch on
        (the seed study saved 34 % of its epochs with a warm-up epoch, 52 % without, and found a
        better best trial: README, Studies)."""
        if self.pruner == "hyperband":
            return optuna.pruners.HyperbandPruner(**{"min_resource": 1, "max_resource": self.epochs,
                                                     **self.pruner_args})
        if self.pruner == "none":
            return optuna.pruners.NopPruner(**self.pruner_args)
        return optuna.pruners.MedianPruner(**{"n_startup_trials": 3, "n_warmup_steps": 0, **self.pruner_args})

    @property
    def metrics(self) -> tuple[str, ...]:
        return OBJECTIVES[self.objective]

    @property
    def directions(self) -> list[str]:
        return [DIRECTIONS[m] for m in self.metrics]

    @property
    def uses_probe(self) -> bool:
        return PROBE_METRIC in self.metrics

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        """Draw (or fix) every parameter of the space for `trial`."""
        return {name: _suggest(trial, name, dist) for name, dist in self.space.items()}

    def build_module(self, params: dict[str, Any]) -> BaseModule:
        """The LightningModule a trial (or the best-trial re-run) trains, from drawn parameters."""
        net = NetConfig(**{k: v for k, v in params.items() if k in NET_KEYS})
        optim = {k: v for k, v in params.items() if k in OPTIM_KEYS}
        if "optimizer" in optim:
            optim["name"] = optim.pop("optimizer")
        extra = {k: v for k, v in params.items() if k in MODULE_KEYS[self.model]}
        return MODELS[self.model](net=net, optim=OptimConfig(**optim), **extra)


def _suggest(trial: optuna.Trial, name: str, dist: Any) -> Any:
    if not isinstance(dist, dict):
        return dist  # a fixed value
    kind = dist.get("type")
    if kind == "int":
        return trial.suggest_int(name, dist["low"], dist["high"], log=dist.get("log", False))
    if kind == "float":
        return trial.suggest_float(name, float(dist["low"]), float(dist["high"]), log=dist.get("log", False))
    if kind == "categorical":
        return trial.suggest_categorical(name, dist["choices"])
    raise AeclsError(f"search-space entry {name}: type must be int, float or categorical, got {kind!r}")


def load_study(path: str | Path) -> StudySpec:
    """Read and validate a study file; a name without a path is looked up in ./studies/."""
    path = Path(path)
    if not path.exists() and (Path("studies") / f"{path}.yaml").exists():
        path = Path("studies") / f"{path}.yaml"
    if not path.is_file():
        raise AeclsError(f"study file not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise AeclsError(f"{path}: not valid YAML ({e})") from e
    raw.setdefault("name", path.stem)
    try:
        return StudySpec(**raw).validate()
    except TypeError as e:
        raise AeclsError(f"{path}: {e}") from e
