"""Which graph labels the training images best, measured on validation images only: the choice
that `aecls transfer sweep --methods pseudo` needs (which codes, which algorithm, what fraction
to keep) made without the test set.

For each seed, the training split and the validation images are the nodes of one k-NN graph of
the frozen codes (each encoder's, and all of them side by side); from a labelled subset of the
training split each algorithm labels every node, and the validation nodes, whose labels nothing
reads until then, score it: the accuracy of the fraction of them the graph is surest of (largest
margin), for each fraction asked. The same draw of the subset as every sweep's (seed s, budget b).

Why by hand: this is aecls's own question (its encoders, its subsets); the graph and the solvers
are graphlearning's (aecls.transfer.graph).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from aecls.core.errors import check
from aecls.core.paths import LABELLING_CSV, LABELLING_MD, LABELLING_PNG
from aecls.core.progress import in_terminal
from aecls.data import FashionMNISTDataModule
from aecls.data.subsets import stratified_subset
from aecls.evaluation.stats import SPREAD, mean_sd
from aecls.transfer import graph, runs
from aecls.transfer.config import check_seeds

FRACTIONS = (0.25, 0.5, 0.75, 1.0)
SPLITS = ("train", "val")


def frozen_codes(encoder: str, dm: FashionMNISTDataModule, splits: tuple[str, ...]) -> list[np.ndarray]:
    """[codes, labels] of each split in `splits`, in that order, from the frozen `encoder`
    (a best_encoder.pt, its folder or an AE checkpoint), as a sweep's frozen runs compute them."""
    from aecls.training.train import build_module

    module = build_module({"family": "classifier", "init_args": {"mode": "frozen", "encoder_path": encoder}})
    coded = module.codes_once(dm, splits=splits)
    return [t.cpu().numpy() for split in splits for t in coded.splits[split]]


def joined_codes(codes: list[np.ndarray]) -> np.ndarray:
    """Several encoders' codes of the same images as one code: each at unit length, so each
    encoder weighs the same in the graph's angles whatever its scale."""
    return codes[0] if len(codes) == 1 else np.hstack([graph.normalised(c) for c in codes])


def accuracy_by_fraction(pred: np.ndarray, margin: np.ndarray, truth: np.ndarray,
                         fractions: tuple[float, ...]) -> dict[float, float]:
    """{fraction: accuracy of `pred` on the fraction of the nodes with the largest `margin`}."""
    order = np.argsort(-margin, kind="stable")
    right = (pred == truth)[order]
    return {f: float(right[: max(1, round(f * len(order)))].mean()) for f in fractions}


def check_asked(budgets: list[int | None], seeds: list[int], algorithms: tuple[str, ...]) -> None:
    """What `measure` is asked, checked before anything runs or is written."""
    check_seeds(seeds)
    check(bool(budgets) and all(b is not None and b >= 10 for b in budgets),
          "label budgets must be numbers >= 10 ('all' leaves nothing to label)", "labels")
    unknown = sorted(set(algorithms) - set(graph.ALGORITHMS))
    check(bool(algorithms) and not unknown,
          f"unknown algorithms {unknown}; choose from {list(graph.ALGORITHMS)}", "algorithms")


def measure(encoders: dict[str, str], budgets: list[int], seeds: list[int],
            algorithms: tuple[str, ...] = graph.FAST, fractions: tuple[float, ...] = FRACTIONS,
            data_dir: str | None = None, val_size: int = 5000, progress: bool = True) -> list[dict]:
    """One row per (codes, labels, seed, algorithm, fraction): the validation accuracy of the
    pseudo-labels. `encoders`: NAME -> encoder; the codes are each alone and, with two or more,
    all side by side (NAME+NAME)."""
    check_asked(budgets, seeds, algorithms)
    names = list(encoders)
    combos = [[n] for n in names] + ([names] if len(names) > 1 else [])
    total = len(seeds) * len(combos) * len(budgets) * len(algorithms)
    bar = tqdm(total=total, desc="graph labels", unit="solve", disable=not (progress and in_terminal()))
    rows, done = [], 0
    for seed in seeds:
        dm = FashionMNISTDataModule(data_dir=data_dir, seed=seed, val_size=val_size)
        codes = {n: frozen_codes(encoders[n], dm, SPLITS) for n in names}
        train_y, val_y = codes[names[0]][1], codes[names[0]][3]
        for combo in combos:
            train = joined_codes([codes[n][0] for n in combo])
            val = joined_codes([codes[n][2] for n in combo])
            w, n, classes = graph.knn(np.vstack([train, val])), len(train), int(train_y.max()) + 1
            for budget in budgets:
                labelled = stratified_subset(train_y, budget, seed)
                for algorithm in algorithms:
                    start = time.perf_counter()
                    scores = graph.propagate(algorithm, w, labelled, train_y[labelled], classes)
                    seconds = time.perf_counter() - start
                    node = scores[n:]
                    by = accuracy_by_fraction(node.argmax(1), graph.margin(node), val_y, fractions)
                    run = {"codes": "+".join(combo), "labels": budget, "seed": seed, "algorithm": algorithm}
                    rows += [{**run, "fraction": f, "val_acc": f"{acc:.4f}", "seconds": f"{seconds:.2f}"}
                             for f, acc in by.items()]
                    bar.update()
                    done += 1
            if progress and bar.disable:  # in a log, a line per graph instead of a bar
                print(f"graph labels: seed {seed}, codes {'+'.join(combo)}: {done} of {total} solves",
                      flush=True)
    bar.close()
    return rows


def table(rows: list[dict]) -> str:
    """Markdown: one line per (codes, labels, algorithm), validation accuracy (%) per fraction kept,
    mean ± sd over seeds."""
    cells: dict[tuple, dict[float, list[float]]] = {}
    for r in rows:
        cells.setdefault((r["codes"], int(r["labels"]), r["algorithm"]), {}).setdefault(
            float(r["fraction"]), []).append(float(r["val_acc"]))
    fractions = sorted({float(r["fraction"]) for r in rows})
    lines = ["| codes | labels | algorithm | " + " | ".join(f"surest {f:.0%}" for f in fractions) + " |",
             "|---|---:|---|" + "---:|" * len(fractions)]
    for (codes, labels, algorithm), by in sorted(cells.items(), key=lambda kv: (kv[0][1], *kv[0])):
        lines.append(f"| {codes} | {labels:,} | {algorithm} | "
                     + " | ".join(mean_sd(by[f], scale=100) for f in fractions) + " |")
    seeds = len({r["seed"] for r in rows})
    return ("\n".join(lines) + f"\n\nAccuracy (%) of the graph's labels on the validation images it is "
            f"surest of (largest margin), by the fraction kept; {SPREAD} ({seeds} seed(s)).\n")


def plot(rows: list[dict], path: Path) -> None:
    """Validation accuracy vs fraction kept: one panel per label budget, a line per (codes,
    algorithm), the mean over seeds."""
    from aecls.core.plotting import plt, save_figure

    budgets = sorted({int(r["labels"]) for r in rows})
    fig, axes = plt.subplots(1, len(budgets), figsize=(6 * len(budgets), 4.5), squeeze=False)
    for ax, budget in zip(axes[0], budgets, strict=True):
        lines: dict[str, dict[float, list[float]]] = {}
        for r in rows:
            if int(r["labels"]) == budget:
                lines.setdefault(f"{r['codes']} {r['algorithm']}", {}).setdefault(
                    float(r["fraction"]), []).append(100 * float(r["val_acc"]))
        for name, by in sorted(lines.items()):
            xs = sorted(by)
            ax.plot(xs, [np.mean(by[x]) for x in xs], marker="o", label=name)
        ax.set(xlabel="fraction of validation images kept (surest first)", ylabel="accuracy (%)",
               title=f"{budget:,} labels")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("Graph pseudo-labels on validation images")
    save_figure(fig, path)


def write(rows: list[dict], out: Path) -> dict[str, Path]:
    """labelling.csv (the rows, with provenance), labelling.md (the table) and labelling.png."""
    out.mkdir(parents=True, exist_ok=True)
    stamp = runs.provenance()
    runs.save([{**r, **stamp} for r in rows], out / LABELLING_CSV, fields=())
    (out / LABELLING_MD).write_text("# Graph pseudo-labels on validation images\n\n" + table(rows))
    plot(rows, out / LABELLING_PNG)
    return {name: out / name for name in (LABELLING_CSV, LABELLING_MD, LABELLING_PNG)}
