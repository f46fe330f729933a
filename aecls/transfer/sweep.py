"""Label-efficiency sweep: for each label budget and seed, a classifier trained from scratch, on the
frozen pretrained encoder, and fine-tuning it, beside two non-deep baselines on the same labels
(logistic regression on raw pixels, and on PCA with the encoder's latent dim); opt-in, FixMatch,
the graph methods, and `pseudo`: the fine-tuned classifier trained on every training image,
labelled by a graph method from the subset (its own labels kept); `pseudo_fixmatch`: FixMatch
started from the weights `pseudo` trained.

No validation labels are used for selection (a 100-label run cannot assume 5,000 more): every
run trains a fixed number of steps and is scored once, on the untouched 10k test set. A sweep with
`score` "val" is scored on the validation images instead: the one for choosing a method's settings
(`pseudo`'s keep fraction, say) before the chosen ones see the test set.
"""

from __future__ import annotations

import csv
import datetime
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from tqdm import tqdm

from aecls.baselines import flat
from aecls.data import FashionMNISTDataModule
from aecls.data.subsets import stratified_subset
from aecls.errors import FitInterrupted, Interrupted
from aecls.modules import OptimConfig
from aecls.modules.classifier import Classifier
from aecls.modules.encoders import load_encoder
from aecls.modules.semisupervised import FixMatch, PseudoLabelMonitor, published_optim
from aecls.paths import CURVES_CSV, CURVES_PNG, SWEEP_CSV, SWEEP_MD, SWEEP_PNG
from aecls.progress import in_terminal
from aecls.stats import SPREAD, mean_and_sd, mean_sd
from aecls.train import TrainConfig, build_module, train
from aecls.training import quiet_lightning
from aecls.transfer import graph, runs
from aecls.transfer.config import (
    DEEP,
    GRAPH,
    METHODS,
    OWN_VIEWS,
    PSEUDO,
    SCORES,
    SEMI,
    SweepConfig,
    score_column,
)
from aecls.transfer.labelling import frozen_codes, side_by_side
from aecls.transfer.plots import accuracy_plot, pseudo_label_plot

TESTED = ("train", "test")  # the splits a sweep run reads: it selects nothing on validation


def _codes_once(module, dm: FashionMNISTDataModule) -> FashionMNISTDataModule:
    """The data of a frozen-encoder run: its tested splits' codes, computed once."""
    return module.codes_once(dm, splits=TESTED)


def scored_on(dm: FashionMNISTDataModule, score: str) -> FashionMNISTDataModule:
    """`dm` (set up) whose test split is the images runs are scored on: the test set, or with
    `score` "val" the validation images in its place (a sweep that chooses settings never sees
    the test set)."""
    dm.setup()
    if score == "val":
        dm.splits["test"] = dm.splits["val"]
    return dm


def _deep(cfg: SweepConfig, method: str, dm: FashionMNISTDataModule, net, seed: int,
          passes: int | None = None, steps: int | None = None, model=None, test: str | None = "final"):
    """Train `method`'s classifier (or continue `model`, a built one) on `dm`'s training split for
    `steps` (default: `passes`, else the sweep's epochs, over it, at least min_steps); returns
    the test accuracy, or with `test` None the trained module."""
    n = len(dm.splits["train"][0])
    steps = steps or max(cfg.min_steps, (passes or cfg.epochs) * max(1, n // cfg.batch_size))
    given, model = model, {"family": "classifier", "init_args": dict(
        net=net if method == "scratch" else None, mode=method,
        encoder_path=None if method == "scratch" else cfg.encoder, head_hidden=cfg.head_hidden,
        encoder_lr_scale=cfg.encoder_lr_scale, optim=OptimConfig(lr=cfg.lr, scheduler="onecycle"))}
    codes = method == "frozen" and not cfg.augment  # the head trains on codes computed once
    run = TrainConfig(model=model if given is None else given, data=dm, seed=seed, test=test,
                      trainer={"max_epochs": -1, "max_steps": steps, "limit_val_batches": 0},
                      data_hook=_codes_once if codes else None)
    done = train(run)
    return done.module if test is None else float(done.test["test/acc"])


def fixmatch_module(cfg: SweepConfig, seed: int, start: Classifier | None = None) -> FixMatch:
    """The sweep's FixMatch: the pretrained encoder (fine-tuned) and a new head, or with `start` (a
    classifier of that encoder and the same head) `start`'s weights."""
    model = build_module({"family": "fixmatch", "init_args": dict(
        mode="finetune", encoder_path=cfg.encoder, head_hidden=cfg.head_hidden,
        encoder_lr_scale=cfg.encoder_lr_scale, threshold=cfg.threshold,
        optim=published_optim(cfg.fixmatch_lr), unlabelled_ratio=cfg.unlabelled_ratio,
        unlabelled_weight=cfg.unlabelled_weight, eval_ema=cfg.eval_ema, teacher_ema=cfg.teacher_ema,
        seed=seed)})
    if start is not None:
        model.load_state_dict(start.state_dict())  # strict: the same encoder and head, every weight
    return model


def _fixmatch(cfg: SweepConfig, dm: FashionMNISTDataModule, seed: int,
              start: Classifier | None = None) -> tuple[float, list[dict]]:
    """`fixmatch_module(cfg, seed, start)` trained on the subset's labels and the training split's
    images, read without labels: (test accuracy of the scored weights, the pseudo-label
    diagnostic's history)."""
    monitor = PseudoLabelMonitor(cfg.monitor_every)
    trainer = {"max_epochs": -1, "max_steps": cfg.fixmatch_steps, "limit_val_batches": 0}
    run = train(TrainConfig(model=fixmatch_module(cfg, seed, start), data=dm, seed=seed, test="final",
                            callbacks=[monitor], trainer=trainer))
    return float(run.test["test/acc"]), monitor.history


class GraphCodes:
    """What the graph methods read, per seed: the frozen codes of that seed's training split and
    of the test images (of `graph_codes`' encoders side by side, each at unit length; default the
    sweep's encoder), and their k-NN graphs, built once and shared by every budget and method of
    the seed."""

    def __init__(self, cfg: SweepConfig) -> None:
        self.cfg, self.by_seed = cfg, {}

    def __call__(self, seed: int) -> graph.Graphs:
        if seed not in self.by_seed:
            dm = scored_on(FashionMNISTDataModule(data_dir=self.cfg.data_dir, seed=seed,
                                                  val_size=self.cfg.val_size), self.cfg.score)
            parts = [frozen_codes(e, dm, TESTED) for e in self.cfg.graph_codes or [self.cfg.encoder]]
            train, test = (side_by_side([p[i] for p in parts]) for i in (0, 2))
            self.by_seed[seed] = graph.Graphs(train, parts[0][1], test, parts[0][3])
        return self.by_seed[seed]


def _labelled(g: graph.Graphs, budget: int | None, seed: int) -> np.ndarray:
    """Positions in the training split of the subset the DataModule draws for (budget, seed)."""
    return stratified_subset(g.train_y, budget, seed) if budget else np.arange(len(g.train_y))


def _graph(codes: GraphCodes, method: str, budget: int | None, seed: int) -> float:
    """Graph method `method` on the codes of seed `seed`'s training split (and the test images, for
    the transductive ones), from the labelled subset the DataModule draws for (budget, seed)."""
    g = codes(seed)
    return g.accuracy(_labelled(g, budget, seed), method)


def _pseudo(cfg: SweepConfig, method: str, dm: FashionMNISTDataModule, codes: GraphCodes, net,
            budget: int | None, seed: int) -> tuple[float, dict[str, str], list[dict]]:
    """The fine-tuned classifier trained `pseudo_passes` passes over the training images that
    Graphs.training_labels keeps, each with its label if in the subset, else the class the graph
    method `pseudo_graph` gives it from the subset's labels; the subset repeated to be
    `pseudo_labelled_share` of them (graph.repeated); then, with `pseudo_tune_steps`, that many
    steps on the subset alone, or for `pseudo_fixmatch`, FixMatch from those weights. Returns the
    test accuracy, a diagnostic for the row (how many images were kept and how many of their
    labels were right, read from the training labels after the labels are made; nothing trains on
    it) and FixMatch's pseudo-label history (empty without FixMatch)."""
    g = codes(seed)
    labelled = _labelled(g, budget, seed)
    y, keep = g.training_labels(labelled, cfg.pseudo_graph, cfg.pseudo_keep)
    rows = torch.from_numpy(graph.repeated(keep, labelled, cfg.pseudo_labelled_share))
    images = dm.unlabelled_images()  # the training split, in the order the codes are in
    subset = dm.splits["train"]
    device = subset[0].device
    dm.splits["train"] = (images[rows].to(device), torch.from_numpy(y)[rows].to(device))
    history: list[dict] = []
    if method == "pseudo_fixmatch" or cfg.pseudo_tune_steps:
        model = _deep(cfg, "finetune", dm, net, seed, passes=cfg.pseudo_passes, test=None)
        dm.splits["train"] = subset  # then the given labels alone (FixMatch: and the images unlabelled)
        if method == "pseudo_fixmatch":
            acc, history = _fixmatch(cfg, dm, seed, start=model)
        else:
            acc = _deep(cfg, "finetune", dm, net, seed, steps=cfg.pseudo_tune_steps, model=model)
    else:
        acc = _deep(cfg, "finetune", dm, net, seed, passes=cfg.pseudo_passes)
    right = float((y[keep] == g.train_y[keep]).mean())
    return acc, {"pseudo_images": str(int(keep.sum())), "pseudo_label_acc": f"{right:.4f}"}, history


def _logreg(dm: FashionMNISTDataModule, pca_dim: int | None, seed: int) -> float:
    x_train, y_train = (t.cpu().numpy() for t in dm.splits["train"])
    x_test, y_test = (t.cpu().numpy() for t in dm.splits["test"])
    # PCA cannot keep more components than there are images (a 100-label run, latent 138).
    steps = [PCA(min(pca_dim, len(x_train), x_train[0].size), random_state=seed)] if pca_dim else []
    clf = make_pipeline(*steps, LogisticRegression(max_iter=500))
    clf.fit(flat(x_train), y_train)
    return float(clf.score(flat(x_test), y_test))


def _preflight(cfg: SweepConfig) -> None:
    """What would stop the sweep at its first runs, checked before it writes anything: the data
    (its folder and files) and the largest label budget (a subset of that many must fit the
    training split; every smaller one then does), and each encoder whose codes make the graph."""
    budgets = [b for b in cfg.labels if b is not None]
    FashionMNISTDataModule(data_dir=cfg.data_dir, n_labels=max(budgets, default=None),
                           seed=cfg.seed_list()[0], val_size=cfg.val_size).load_arrays()
    if any(m in GRAPH or m in PSEUDO for m in cfg.methods):
        for path in cfg.graph_codes or []:
            load_encoder(path)


def run_sweep(cfg: SweepConfig, progress: bool = True) -> list[dict]:
    """Every (budget, seed, method) once; returns the rows and writes them (see `write_outputs`).

    Each run's row is in sweep.csv as soon as the run ends (aecls.transfer.runs): the same
    command again skips the runs already there, so a stopped sweep continues where it stopped;
    Ctrl-C ends it with one line saying how many runs were kept."""
    cfg.validate()
    _, net, source = load_encoder(cfg.encoder)  # fails early on a bad path
    out = Path(cfg.out)
    rows = runs.load(out, cfg)  # refuses a foreign CSV, or rows made with other settings
    done = {runs.key(r["budget"], r["seed"], r["method"]) for r in rows}
    plan = [(b, s, m) for b in cfg.labels for s in cfg.seed_list() for m in cfg.methods]
    todo = [p for p in plan if runs.key(*p) not in done]
    if len(todo) < len(plan):
        print(f"transfer sweep: {len(plan) - len(todo)} of {len(plan)} runs already in {out / SWEEP_CSV}; "
              f"reusing them, {len(todo)} to run", flush=True)
    _preflight(cfg)  # every refusal before sweep.json is written
    if cfg.score == "test":
        print("transfer sweep: every run is scored on the test set; to choose settings, score them on "
              "the validation images first (--score val), then run the chosen ones here", flush=True)
    encoder = {"encoder": str(cfg.encoder), "family": source, "latent_dim": net.latent_dim}
    runs.start(out, cfg, encoder)
    curves = _read_curves(out / CURVES_CSV, rows)
    stamp = runs.provenance()
    graph_codes = GraphCodes(cfg)
    quiet_lightning()
    scored, column = SCORES[cfg.score], score_column(cfg.score)
    finished = len(plan) - len(todo)
    # a bar in a terminal; in a log (or without progress) a line per finished run instead
    bar = tqdm(total=len(todo), desc="transfer sweep", unit="run", disable=not (progress and in_terminal()))
    try:
        for budget, seed, method in todo:
            dm = FashionMNISTDataModule(data_dir=cfg.data_dir, n_labels=budget, seed=seed,
                                        batch_size=cfg.batch_size, val_size=cfg.val_size,
                                        augment=cfg.augment and method not in OWN_VIEWS)
            scored_on(dm, cfg.score)  # a budget larger than the data fails here, with the class counts
            n_labels = len(dm.splits["train"][0])  # before `pseudo` puts every training image there
            start = time.perf_counter()
            extra, history = {}, []
            if method in DEEP:
                acc = _deep(cfg, method, dm, net, seed)
            elif method in GRAPH:
                acc = _graph(graph_codes, method, budget, seed)
            elif method in PSEUDO:
                acc, extra, history = _pseudo(cfg, method, dm, graph_codes, net, budget, seed)
            elif method in SEMI:
                acc, history = _fixmatch(cfg, dm, seed)
            else:
                acc = _logreg(dm, net.latent_dim if method == "logreg_pca" else None, seed)
            if history:  # saved before the row; a run stopped in between runs again (see _read_curves)
                curves += [{"labels": n_labels, "seed": seed, "method": method, **h} for h in history]
                runs.save(curves, out / CURVES_CSV, fields=CURVE_FIELDS)
            seconds = time.perf_counter() - start
            rows.append({"labels": str(n_labels),
                         "budget": runs.key(budget, seed, method)[0], "seed": str(seed),
                         "method": method, column: str(acc),
                         "seconds": f"{seconds:.2f}", **stamp,
                         "date": datetime.datetime.now().isoformat(timespec="seconds"), **extra})
            runs.save(rows, out / SWEEP_CSV, runs.fields_for(cfg.score))  # kept, whatever happens next
            finished += 1
            bar.update()
            if bar.disable:
                print(f"run {finished}/{len(plan)}: {rows[-1]['labels']} labels, seed {seed}, {method}: "
                      f"{scored} {100 * acc:.2f} % ({seconds:.0f} s)", flush=True)
    except (KeyboardInterrupt, FitInterrupted):
        bar.close()
        left = len(plan) - finished
        raise Interrupted(f"transfer sweep stopped: {finished} of {len(plan)} runs kept in "
                          f"{out / SWEEP_CSV}; the same command runs the other {left}") from None
    bar.close()
    write_outputs(rows, out, title=f"{Path(cfg.encoder).name} ({source}, latent {net.latent_dim})",
                  curves=curves, score=cfg.score)
    return rows


# a curve row: its run (labels, seed, method), then the diagnostic at one step
CURVE_FIELDS = ("labels", "seed", "method")


def _read_curves(path: Path, rows: list[dict]) -> list[dict]:
    """The FixMatch diagnostic rows of the runs in `rows` (a diagnostic: not checked further).
    A run stopped after its curve was saved but before its row has no row, so it runs again:
    its old curve is dropped here, or the rerun would add it twice. Curves written before they
    named their method are FixMatch's (pseudo_fixmatch's were not kept then)."""
    if not path.is_file():
        return []
    # the runs that have a curve: the methods that run FixMatch (and so draw their own views)
    kept = {(r["labels"], r["seed"], r["method"]) for r in rows if r["method"] in OWN_VIEWS}
    with open(path, newline="") as f:
        curves = [{**c, "method": c.get("method") or "fixmatch"} for c in csv.DictReader(f)]
    return [c for c in curves if (c["labels"], c["seed"], c["method"]) in kept]


def runs_by_cell(rows: list[dict]) -> dict[tuple[int, str], list[float]]:
    """{(labels, method): accuracies over seeds}."""
    groups: dict[tuple[int, str], list[float]] = {}
    for r in rows:
        groups.setdefault((int(r["labels"]), r["method"]), []).append(float(runs.accuracy(r)))
    return groups


def summarise(rows: list[dict]) -> dict[tuple[int, str], tuple[float, float]]:
    """{(labels, method): (mean, sample sd) of the accuracy over seeds}."""
    return {k: mean_and_sd(v) for k, v in runs_by_cell(rows).items()}


def markdown_table(rows: list[dict], score: str) -> str:
    """Markdown: per budget, each method's accuracy on the `score` images, mean ± sd over seeds."""
    runs = runs_by_cell(rows)
    budgets = sorted({k[0] for k in runs})
    methods = [m for m in METHODS if any(k[1] == m for k in runs)]
    seeds = len({r["seed"] for r in rows})
    lines = [f"| labels | {' | '.join(methods)} |", "|---:|" + "---:|" * len(methods)]
    for b in budgets:
        cells = [mean_sd(runs[(b, m)], scale=100) if (b, m) in runs else "-" for m in methods]
        lines.append(f"| {b} | {' | '.join(cells)} |")
    return "\n".join(lines) + f"\n\n{SCORES[score].capitalize()} (%), {SPREAD} ({seeds} seed(s)).\n"


def write_outputs(rows: list[dict], out: Path, title: str = "", curves: list[dict] | None = None,
                  score: str = "test") -> dict[str, Path]:
    """The summaries of a finished sweep beside its rows, each naming the images its runs were
    scored on (`score`): sweep.md (mean ± sd table), sweep.png
    (accuracy vs labels); with FixMatch runs (fixmatch, pseudo_fixmatch), fixmatch_curves.png
    (the pseudo-label diagnostic vs steps). sweep.csv and fixmatch_curves.csv are written run by
    run, sweep.json (the encoder and settings) by `runs.start`, all in `run_sweep`."""
    out.mkdir(parents=True, exist_ok=True)
    (out / SWEEP_MD).write_text(f"# Transfer sweep: {title}\n\n" + markdown_table(rows, score))
    stats = summarise(rows)
    accuracy_plot([(stats, m, {"label": m}) for m in METHODS], out / SWEEP_PNG, title, SCORES[score])
    names = [SWEEP_CSV, SWEEP_MD, SWEEP_PNG]
    if curves:
        pseudo_label_plot(curves, out / CURVES_PNG, title)
        names += [CURVES_CSV, CURVES_PNG]
    return {name: out / name for name in names}
