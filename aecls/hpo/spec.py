"""A study file (studies/*.yaml) as data: a frozen `StudySpec`, read without torch, and its search
space. What needs the model families (the checks, a trial's model config) is aecls.hpo.space's.

A space entry is either a fixed value (`scheduler: onecycle`) or a distribution:
`{type: int|float, low, high, log, step}` or `{type: categorical, choices: [...]}`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from aecls.modules.registry import Family

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
TRAINER_DEFAULTS = {"devices": 1}
# What a continued study must share with the run that created it (n_trials, pruner, trainer and
# storage may change between runs: they change how, not what, is searched).
FINGERPRINT_KEYS = ("model", "epochs", "objective", "seed", "data", "space", "defaults")


@dataclass(frozen=True)
class StudySpec:
    """A study file as data: `read_study` reads it (no torch), `aecls.hpo.space.check_study`
    checks it and returns the checked spec (the model config's defaults and data settings filled
    in); nothing changes one in place."""

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

    @property
    def family(self) -> Family:
        from aecls.modules.registry import family  # loads the model families, torch with them

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


def locate_study(path: str | Path) -> Path:
    """The study file `path` names: the path, or for a bare name studies/NAME.yaml."""
    path = Path(path)
    if not path.exists() and (Path("studies") / f"{path}.yaml").exists():
        path = Path("studies") / f"{path}.yaml"
    if not path.is_file():
        tried = [str(path), *([str(Path("studies") / f"{path}.yaml")] if path.suffix == "" else [])]
        raise StudyFileNotFound(f"study file not found: tried {', '.join(tried)}")
    return path


def read_study(path: str | Path) -> StudySpec:
    """Read a study file into a StudySpec, unchecked (`aecls.hpo.space.load_study` checks it); a
    name without a path is looked up in ./studies/. Imports no torch."""
    path = locate_study(path)
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
    return StudySpec(**raw, file=str(path.resolve()))


class StudyFileNotFound(AeclsError):
    """No study file at that path or name (a study's storage may know where it is)."""
