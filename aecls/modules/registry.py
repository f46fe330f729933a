"""One registry of model families: what a study's `model:`, `aecls test`, encoder loading, sweeps,
the pipeline and the report know about a model, declared once, in the family's own module file.

Each module file in aecls/modules/ calls `register(Family(...))` when it is imported, and
`families()` imports every module of the package first: adding a family is one file here plus
its config (configs/NAME.yaml), and no list elsewhere names it. (Why not entry points or a
hand-kept list: a list is what had to be edited in four places; entry points need a re-install
for every new file a researcher drops in.)
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aecls.core.constants import LOSS_METRIC
from aecls.core.errors import AeclsError

# autoencoder / pretext: trained without labels, their encoder transfers;
# classifier / semi-supervised: trained on labels (the latter on unlabelled images too).
KINDS = ("autoencoder", "pretext", "classifier", "semi-supervised")
ENCODER_KINDS = ("autoencoder", "pretext")

_FAMILIES: dict[str, Family] = {}
_LOADED = False


@dataclass(frozen=True)
class Family:
    """A model family.

    Args:
        name: what a study's `model:`, an encoder export and the pipeline call it (cae, vae, ...).
        module: its LightningModule class.
        kind: one of KINDS.
        study_keys: the module's own arguments a study may search, besides net and optim fields;
            None (the default): every argument of its __init__ but net, optim, its `test_settings`
            and its `not_searched` (a seed, a path), read from the class, so a new argument is
            searchable without a second list.
        config: its default config, configs/CONFIG.yaml (default: the name).
        code_halves: the encoder outputs code_halves x latent_dim; the first latent_dim are the code
            (a VAE's encoder gives mean and log-variance: 2, its mean is the code).
        matches: which of a class's families a checkpoint is, from its hyper-parameters (a DAE is
            an AutoEncoder with noise); None: every checkpoint of the class.
        score: the metric a study of this family compares (`objective: recon`): one that means
            the same for every value its study keys can take, so trials are ranked by one quantity
            (a VAE's ELBO at beta 1, not its beta-weighted loss; an autoencoder's MSE on clean
            images, not its MSE-or-BCE loss on noisy ones). The training loss stays what trains.
        maximize: is a higher score better?
        loss_keys: study keys that change val/loss itself (a loss choice, a loss weight, the
            input noise): a study that compares val/loss may not search them.
    """

    name: str
    module: type
    kind: str
    study_keys: frozenset[str] | None = None
    config: str | None = None
    code_halves: int = 1
    matches: Callable[[dict[str, Any]], bool] | None = None
    score: str = LOSS_METRIC
    maximize: bool = False
    loss_keys: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"family {self.name}: kind must be one of {KINDS}, got {self.kind!r}")
        keys = module_arguments(self.module) if self.study_keys is None else self.study_keys
        object.__setattr__(self, "study_keys", frozenset(keys))
        object.__setattr__(self, "loss_keys", frozenset(self.loss_keys))
        if not self.loss_keys <= self.study_keys:
            raise ValueError(f"family {self.name}: loss_keys {sorted(self.loss_keys - self.study_keys)} "
                             "are not study keys")
        if self.score == LOSS_METRIC and self.maximize:
            raise ValueError(f"family {self.name}: {LOSS_METRIC} is minimised")

    @property
    def config_name(self) -> str:
        return self.config or self.name

    @property
    def has_encoder(self) -> bool:
        """Does its encoder transfer (probe objective, sweeps, exports)?"""
        return self.kind in ENCODER_KINDS


def module_arguments(module: type) -> set[str]:
    """The arguments of `module`'s __init__ that are hyper-parameters a study may search: all but
    the net and optimiser configs (searched by their own fields), its test-only settings and what it
    declares not searched (`not_searched`: a seed, an encoder path)."""
    params = set(inspect.signature(module.__init__).parameters) - {"self", "net", "optim"}
    return params - set(getattr(module, "test_settings", ())) - set(getattr(module, "not_searched", ()))


def register(family: Family) -> Family:
    """Add a family (called by its module file at import); a name registered twice is a bug."""
    known = _FAMILIES.get(family.name)
    if known is not None and known.module is not family.module:
        raise ValueError(f"model family {family.name!r} is registered twice "
                         f"({known.module.__qualname__}, {family.module.__qualname__})")
    _FAMILIES[family.name] = family
    return family


def families() -> dict[str, Family]:
    """Every family, by name, in the order their files registered them."""
    global _LOADED
    if not _LOADED:
        package = importlib.import_module("aecls.modules")
        for info in pkgutil.iter_modules(package.__path__):
            importlib.import_module(f"aecls.modules.{info.name}")
        _LOADED = True
    return dict(_FAMILIES)


def family(name: str, where: str = "") -> Family:
    """The family called `name`; an unknown one is a user error naming `where` and the known ones."""
    known = families()
    if name not in known:
        prefix = f"{where}: " if where else ""
        raise AeclsError(f"{prefix}unknown model family {name!r}; known: {', '.join(known)}")
    return known[name]


def of_kind(*kinds: str) -> list[Family]:
    return [f for f in families().values() if f.kind in kinds]


def module_classes() -> dict[str, type]:
    """{class name: class} of every registered LightningModule (a checkpoint records its class)."""
    return {f.module.__name__: f.module for f in families().values()}


def for_checkpoint(class_name: str, hparams: dict[str, Any]) -> Family | None:
    """The family a checkpoint of `class_name` with these hyper-parameters belongs to."""
    for f in families().values():
        if f.module.__name__ == class_name and (f.matches is None or f.matches(hparams)):
            return f
    return None


FAMILY_KEY = "aecls_family"  # in a checkpoint: the family its module was built as


def checkpoint_family(ckpt: dict[str, Any]) -> Family | None:
    """The family of a loaded checkpoint: the one it records, else (a checkpoint written before
    families were recorded) the one its class and hyper-parameters match."""
    known = families()
    if ckpt.get(FAMILY_KEY) in known:
        return known[ckpt[FAMILY_KEY]]
    kind = ckpt.get("aecls_model")
    return for_checkpoint(kind, ckpt.get("hyper_parameters") or {}) if kind else None


def code_halves(source: str) -> int:
    """How many latent_dim blocks the encoder of family `source` outputs (1 for an unknown or
    older name: "ae", "scratch")."""
    f = families().get(source)
    return f.code_halves if f is not None else 1
