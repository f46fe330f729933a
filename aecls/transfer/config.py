"""The sweep's settings, written once: `SweepConfig`'s fields are the defaults of the library call
and, through their `help` metadata, the flags of `aecls transfer sweep` (aecls.cli.transfer builds
them). Kept free of torch and Lightning so the command line loads fast."""

from __future__ import annotations

from dataclasses import dataclass, field

from aecls.core.constants import FIXMATCH_EMA, FIXMATCH_LR, FIXMATCH_MU, FIXMATCH_THRESHOLD
from aecls.core.errors import check
from aecls.core.paths import TRANSFER_OUT
from aecls.transfer import graph
from aecls.transfer.methods import method_names, methods

# What each method is, reads and is paired against: aecls.transfer.methods (the registry).
DEFAULT_METHODS = method_names(default=True)  # fixmatch, the pseudo-label and graph methods are opt-in
# What a sweep's runs are scored on (SweepConfig.score), in the words every line, table, column and
# figure of the sweep uses: a validation score is never called a test score.
SCORES = {"test": "test accuracy", "val": "validation accuracy"}
WEIGHTINGS = ("certainty", "none")  # rounds_weighting: graph.weighted_labels
ROUND_STARTS = ("last", "encoder")  # rounds_start: runners.rounds
ROUND_KEEPS = ("each", "first")  # rounds_keep: runners.rounds


def score_column(score: str) -> str:
    """The sweep.csv column that holds a run's accuracy: test_acc, or val_acc for `score` "val"."""
    return f"{score}_acc"


def check_seeds(seeds: list[int], given: object = None) -> None:
    """Seeds as every multi-seed command takes them: at least one, none below 0, none twice."""
    check(len(seeds) >= 1 and min(seeds) >= 0, f"seeds must be >= 1 (a count) or a list of seeds >= 0, "
          f"got {seeds if given is None else given}", "seeds")
    twice = sorted({s for s in seeds if seeds.count(s) > 1})
    check(not twice, f"seeds {twice} given twice: each seed is one run per budget and method", "seeds")


def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass
class SweepConfig:
    encoder: str = field(metadata=_help(
        "artifacts/STUDY/best_encoder.pt (or its folder), or an AE checkpoint"))
    labels: list[int | None] = field(default_factory=lambda: [100, 1000, 10000, None], metadata=_help(
        "label budgets, comma-separated; 'all' = the whole training split"))
    seeds: int | list[int] = field(default=3, metadata=_help(
        "seeds per budget and method: a count (3 = seeds 0, 1, 2) or a list (0,2,5; one seed alone: 2,)"))
    epochs: int = field(default=10, metadata=_help("passes over each labelled subset ..."))
    min_steps: int = field(default=300, metadata=_help("... but at least this many optimiser steps per run"))
    batch_size: int = field(default=128, metadata=_help("batch size of the deep methods"))
    lr: float = field(default=3e-3, metadata=_help("learning rate of the head (and of scratch)"))
    head_hidden: int = field(default=64, metadata=_help(
        "hidden width of the classifier head (0 = linear), as Classifier's"))
    encoder_lr_scale: float = field(default=0.1, metadata=_help("finetune: the encoder's lr = lr * this"))
    augment: bool = field(default=False, metadata=_help(
        "random crop + flip of the labelled training batches (deep methods only)"))
    data_dir: str | None = field(default=None, metadata=_help("IDX directory (default: the search order)"))
    val_size: int = field(default=5000, metadata=_help(
        "images held out of the training set, as in every other stage (no run trains on them; "
        "score val scores runs on them)"))
    out: str = field(default=TRANSFER_OUT, metadata=_help("sweep.csv, sweep.md, sweep.png go here"))
    score: str = field(default="test", metadata=_help(
        "the images every run is scored on: test, or val (the validation images: to choose a "
        "method's settings without the test set; the chosen ones then run with test)"))
    methods: tuple[str, ...] = field(default=DEFAULT_METHODS, metadata=_help(
        f"comma-separated subset of {','.join(method_names())}"))
    fixmatch_steps: int = field(default=2000, metadata=_help("fixmatch: optimiser steps per run"))
    fixmatch_lr: float = field(default=FIXMATCH_LR, metadata=_help(
        "fixmatch: lr of SGD (Nesterov 0.9, weight decay 5e-4, cos(7 pi k / 16 K) decay), as published"))
    threshold: float = field(default=FIXMATCH_THRESHOLD, metadata=_help(
        "fixmatch: confidence a pseudo-label needs to count"))
    unlabelled_ratio: int = field(default=FIXMATCH_MU, metadata=_help(
        "fixmatch: unlabelled images per labelled image in a step (the paper's mu)"))
    unlabelled_weight: float = field(default=1.0, metadata=_help("fixmatch: weight of the unlabelled loss"))
    eval_ema: float = field(default=FIXMATCH_EMA, metadata=_help(
        "fixmatch: decay of the weight average that is scored (0 = the trained weights)"))
    teacher_ema: float = field(default=0.0, metadata=_help(
        "fixmatch: 0 = pseudo-labels from the model itself; else an EMA teacher with this decay"))
    monitor_every: int = field(default=100, metadata=_help(
        "fixmatch, pseudo_fixmatch: every this many steps, pseudo-label rate and accuracy on 1,000 "
        "validation images (a diagnostic: fixmatch_curves.csv/png, a line per run)"))
    graph_codes: list[str] | None = field(default=None, metadata=_help(
        "graph and pseudo methods: the encoders whose codes make the k-NN graph, comma-separated "
        "(several: their unit-length codes side by side); default the sweep's encoder"))
    pseudo_graph: str = field(default="laplace", metadata=_help(
        f"pseudo: the graph algorithm that labels the training images ({', '.join(graph.ALGORITHMS)})"))
    pseudo_keep: float = field(default=1.0, metadata=_help(
        "pseudo: the fraction of the other training images kept, those the graph is surest of "
        "(largest margin); the labelled subset is always kept"))
    pseudo_passes: int = field(default=3, metadata=_help(
        "pseudo: passes over the pseudo-labelled images (at least min_steps steps)"))
    pseudo_tune_steps: int = field(default=0, metadata=_help(
        "pseudo: then this many steps on the labelled subset alone, from the weights the "
        "pseudo-labels gave (0 = none; pseudo_fixmatch: FixMatch's fixmatch_steps instead)"))
    pseudo_labelled_share: float = field(default=0.0, metadata=_help(
        "pseudo: the share of the training images that are the labelled subset's, its images "
        "repeated to make it (0 = each once)"))
    rounds: int = field(default=3, metadata=_help(
        "rounds: training rounds, each on the labels propagated over the graph of the network's "
        "codes from the round before (the first: of the pretext's codes, as pseudo)"))
    rounds_k: int = field(default=graph.K, metadata=_help(
        "rounds: neighbours of each image in the graph of the network's codes"))
    rounds_weighting: str = field(default="certainty", metadata=_help(
        "rounds: how each propagated label is drawn: certainty (1 - normalised entropy, times "
        "its class's inverse frequency) or none (each once)"))
    rounds_start: str = field(default="last", metadata=_help(
        "rounds: the weights each round trains from: last (the round before's network) or encoder "
        "(the pretrained encoder and a new head, as round 1: only the labels carry over)"))
    rounds_keep: str = field(default="each", metadata=_help(
        "rounds: which images the pseudo_keep cut keeps: each (the surest of each round's labels) or "
        "first (round 1's, the pretext graph's surest, every round; their labels still change)"))

    def seed_list(self) -> list[int]:
        return list(range(self.seeds)) if isinstance(self.seeds, int) else list(self.seeds)

    def validate(self) -> SweepConfig:
        check_seeds(self.seed_list(), self.seeds)
        check(self.lr > 0 and self.epochs >= 1 and self.min_steps >= 1,
              "lr must be > 0, epochs and min_steps >= 1")
        check(self.head_hidden >= 0, f"head_hidden must be >= 0, got {self.head_hidden}", "head_hidden")
        check(self.encoder_lr_scale > 0,
              f"encoder_lr_scale must be > 0, got {self.encoder_lr_scale}", "encoder_lr_scale")
        check(all(b is None or b >= 10 for b in self.labels), "label budgets must be >= 10 (one per class)")
        check(self.fixmatch_steps >= 1 and self.unlabelled_ratio >= 1 and 0 < self.threshold <= 1,
              "fixmatch_steps and unlabelled_ratio must be >= 1, threshold in (0, 1]")
        check(self.fixmatch_lr > 0 and self.monitor_every >= 1 and 0 <= self.eval_ema < 1,
              "fixmatch_lr must be > 0, monitor_every >= 1, eval_ema in [0, 1)")
        check(self.pseudo_graph in graph.ALGORITHMS, f"pseudo_graph must be one of "
              f"{list(graph.ALGORITHMS)}, got {self.pseudo_graph!r}", "pseudo_graph")
        check(0 < self.pseudo_keep <= 1, f"pseudo_keep must be in (0, 1], got {self.pseudo_keep}",
              "pseudo_keep")
        check(self.pseudo_keep == 1 or self.pseudo_graph != "poisson_mbo", "pseudo_keep < 1 ranks images "
              "by the graph's margin, and Poisson-MBO's labels have none (each is one class for "
              "sure): use pseudo_graph poisson_priors, or pseudo_keep 1", "pseudo_keep")
        check(0 <= self.pseudo_labelled_share < 1, "pseudo_labelled_share must be in [0, 1), got "
              f"{self.pseudo_labelled_share}", "pseudo_labelled_share")
        check(self.pseudo_tune_steps >= 0, f"pseudo_tune_steps must be >= 0, got {self.pseudo_tune_steps}",
              "pseudo_tune_steps")
        check(self.rounds >= 1 and self.rounds_k >= 1, "rounds and rounds_k must be >= 1", "rounds")
        check(self.rounds_weighting in WEIGHTINGS, f"rounds_weighting must be one of {list(WEIGHTINGS)}, "
              f"got {self.rounds_weighting!r}", "rounds_weighting")
        check(self.rounds_start in ROUND_STARTS, f"rounds_start must be one of {list(ROUND_STARTS)}, "
              f"got {self.rounds_start!r}", "rounds_start")
        check(self.rounds_keep in ROUND_KEEPS, f"rounds_keep must be one of {list(ROUND_KEEPS)}, "
              f"got {self.rounds_keep!r}", "rounds_keep")
        check(self.pseudo_passes >= 1, f"pseudo_passes must be >= 1, got {self.pseudo_passes}",
              "pseudo_passes")
        check(self.graph_codes is None or len(self.graph_codes) >= 1, "graph_codes: one encoder or more",
              "graph_codes")
        check(self.score in ("test", "val"), f"score must be test or val, got {self.score!r}", "score")
        known = methods()
        unknown = set(self.methods) - set(known)
        check(not unknown, f"unknown methods {sorted(unknown)}; choose from {list(known)}", "methods")
        twice = sorted({m for m in self.methods if self.methods.count(m) > 1})
        check(not twice, f"methods {twice} given twice: each method is one run per budget and seed",
              "methods")
        return self
