"""The sweep's methods, one registry, as aecls.modules.registry is the model families': what each
method is (its kind), which sweep settings its runs read, what a comparison pairs it against,
whether it draws its own views, and its runner. The sweep, `transfer compare`, `aecls results`
and the report ask it; none keeps a list of its own.

Adding a method is one file in this folder that builds a `SweepMethod` and calls `register` (the
files here are loaded in the order below, then any other, alphabetically). Kept free of torch: a
runner imports what it needs when it runs, so the command line loads fast."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aecls.core.errors import AeclsError
from aecls.core.paths import CURVES_CSV

# baseline: no deep network (logistic regression); supervised: a classifier on the labelled subset
# alone; semi-supervised: also the training images outside it, unlabelled; graph: labels
# propagated over the k-NN graph of frozen codes.
KINDS = ("baseline", "supervised", "semi-supervised", "graph")
# Settings every run reads: they fix the images it trains on and is scored on.
EVERY = ("val_size", "score")
BUILT_IN = ("supervised", "fixmatch", "pseudo", "rounds", "propagation", "logreg")  # the table order


@dataclass(frozen=True)
class Outcome:
    """What a run gives its row: the accuracy on the images scored, diagnostics for the row's own
    columns (strings), and FixMatch's pseudo-label history (a curve row a step)."""

    accuracy: float
    extra: dict[str, str] = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)


@dataclass
class Run:
    """One (budget, seed) of a method: the sweep's settings (`cfg`, a SweepConfig), the data set
    up and scored on `cfg.score` (`dm`), the pretrained encoder's net config (`net`), the budget
    (None: every label) and seed, and `codes`: each seed's frozen codes and k-NN graphs, built once
    for every method that reads them (aecls.transfer.runners.GraphCodes)."""

    cfg: Any
    dm: Any
    net: Any
    budget: int | None
    seed: int
    codes: Any


@dataclass(frozen=True)
class SweepMethod:
    """A sweep method.

    Args:
        name: what `--methods` and a sweep.csv row call it.
        kind: one of KINDS.
        run: its runner: Run -> Outcome (or the accuracy alone).
        reads: the sweep settings its runs read besides EVERY; two sweeps are alike for this
            method when these agree (a comparison checks nothing else for its rows).
        paired_against: the methods of the same sweep a comparison tests it against, by seed
            (what it builds on: a semi-supervised method against fine-tuning, ...).
        own_views: draws its own augmented views (the data's `augment` stays off) and keeps a
            pseudo-label curve (fixmatch_curves.csv).
        curve: the CSV in the sweep's folder that a run's history (Outcome.history) goes to, a
            row per point (default: fixmatch_curves.csv with own_views, else none).
        uses_encoder: its result depends on the pretrained encoder's weights (a comparison of
            encoders has a panel and a row for it).
        reference: every encoder's result is tested against it (scratch, raw pixels).
        default: run when `--methods` is not given.
        title: how a table names its one cell, for a method that does not use the encoder
            (default: its name).
    """

    name: str
    kind: str
    run: Callable[[Run], Outcome | float]
    reads: tuple[str, ...] = ()
    paired_against: tuple[str, ...] = ()
    own_views: bool = False
    uses_encoder: bool = True
    reference: bool = False
    default: bool = False
    title: str | None = None
    curve: str | None = None

    def __post_init__(self) -> None:
        if self.own_views and self.curve is None:
            object.__setattr__(self, "curve", CURVES_CSV)
        if self.kind not in KINDS:
            raise ValueError(f"sweep method {self.name}: kind must be one of {KINDS}, got {self.kind!r}")
        object.__setattr__(self, "reads", tuple(self.reads))
        object.__setattr__(self, "paired_against", tuple(self.paired_against))
        if self.name in self.paired_against:
            raise ValueError(f"sweep method {self.name}: paired against itself")
        if self.reference and self.uses_encoder:
            raise ValueError(f"sweep method {self.name}: a reference for every encoder uses none")

    @property
    def settings(self) -> tuple[str, ...]:
        """Every sweep setting its runs read."""
        return (*EVERY, *self.reads)

    @property
    def label(self) -> str:
        return self.title or self.name


_METHODS: dict[str, SweepMethod] = {}
_LOADED = False


def register(method: SweepMethod) -> SweepMethod:
    """Add a method (called by its file at import); a name registered twice is a bug."""
    known = _METHODS.get(method.name)
    if known is not None and known.run is not method.run:
        raise ValueError(f"sweep method {method.name!r} is registered twice")
    _METHODS[method.name] = method
    return method


def unregister(name: str) -> None:
    """Take a method out (a test's own method, once the test is done)."""
    _METHODS.pop(name, None)


def methods() -> dict[str, SweepMethod]:
    """Every method, by name, in table order: the built-in files' order, then the others'."""
    global _LOADED
    if not _LOADED:
        package = importlib.import_module(__name__)
        others = sorted(i.name for i in pkgutil.iter_modules(package.__path__) if i.name not in BUILT_IN)
        for name in (*BUILT_IN, *others):
            importlib.import_module(f"{__name__}.{name}")
        _LOADED = True
        _check_pairs()
    return dict(_METHODS)


def _check_pairs() -> None:
    unknown = {m.name: sorted(set(m.paired_against) - set(_METHODS)) for m in _METHODS.values()}
    unknown = {k: v for k, v in unknown.items() if v}
    if unknown:
        raise ValueError(f"sweep methods paired against methods no file registers: {unknown}")


def method(name: str) -> SweepMethod:
    """The method called `name`; an unknown one is a user error naming the known ones."""
    known = methods()
    if name not in known:
        raise AeclsError(f"unknown method {name!r}; choose from {', '.join(known)}", setting="methods")
    return known[name]


def method_names(**where: Any) -> tuple[str, ...]:
    """The names of the methods whose fields equal `where` (kind="graph", default=True, ...), in
    table order."""
    return tuple(n for n, m in methods().items() if all(getattr(m, k) == v for k, v in where.items()))


def settings_read() -> dict[str, tuple[str, ...]]:
    """{method: every setting its runs read}: what a comparison checks, per method."""
    return {n: m.settings for n, m in methods().items()}
