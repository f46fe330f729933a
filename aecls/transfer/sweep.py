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

from tqdm import tqdm

from aecls.core.errors import FitInterrupted, Interrupted
from aecls.core.paths import CURVES_CSV, CURVES_PNG, ROUNDS_CSV, ROUNDS_PNG, SWEEP_CSV, SWEEP_MD, SWEEP_PNG
from aecls.core.progress import in_terminal
from aecls.data import FashionMNISTDataModule
from aecls.modules.encoders import load_encoder
from aecls.training.trainer import quiet_lightning
from aecls.transfer import runs
from aecls.transfer.config import SCORES, SweepConfig, score_column
from aecls.transfer.methods import Outcome, Run, method, method_names
from aecls.transfer.plots import accuracy_plot, pseudo_label_plot, rounds_plot
from aecls.transfer.runners import GraphCodes, scored_on
from aecls.transfer.table import markdown_table, summarise


def _preflight(cfg: SweepConfig) -> None:
    """What would stop the sweep at its first runs, checked before it writes anything: the data
    (its folder and files) and the largest label budget (a subset of that many must fit the
    training split; every smaller one then does), and each encoder whose codes make the graph."""
    budgets = [b for b in cfg.labels if b is not None]
    FashionMNISTDataModule(data_dir=cfg.data_dir, n_labels=max(budgets, default=None),
                           seed=cfg.seed_list()[0], val_size=cfg.val_size).load_arrays()
    if any("graph_codes" in method(m).reads for m in cfg.methods):
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
    # the curve files of the methods to run and of those the rows ran (replotted with the rest)
    named = dict.fromkeys(method(m).curve for m in (*cfg.methods, *(r["method"] for r in rows)))
    curves = {f: _read_curves(out / f, rows, f) for f in named if f is not None}
    stamp = runs.provenance()
    graph_codes = GraphCodes(cfg)
    quiet_lightning()
    scored, column = SCORES[cfg.score], score_column(cfg.score)
    finished = len(plan) - len(todo)
    # a bar in a terminal; in a log (or without progress) a line per finished run instead
    bar = tqdm(total=len(todo), desc="transfer sweep", unit="run", disable=not (progress and in_terminal()))
    try:
        for budget, seed, name in todo:
            m = method(name)
            dm = FashionMNISTDataModule(data_dir=cfg.data_dir, n_labels=budget, seed=seed,
                                        batch_size=cfg.batch_size, val_size=cfg.val_size,
                                        augment=cfg.augment and not m.own_views)
            scored_on(dm, cfg.score)  # a budget larger than the data fails here, with the class counts
            n_labels = len(dm.splits["train"][0])  # before `pseudo` puts every training image there
            start = time.perf_counter()
            done = m.run(Run(cfg, dm, net, budget, seed, graph_codes))
            done = done if isinstance(done, Outcome) else Outcome(float(done))
            acc = done.accuracy
            if done.history and m.curve:  # saved before the row; a run stopped in between runs again
                run = {"labels": n_labels, "seed": seed, "method": name}
                curves[m.curve] += [{**run, **h} for h in done.history]
                runs.save(curves[m.curve], out / m.curve, fields=CURVE_FIELDS)
            seconds = time.perf_counter() - start
            rows.append({"labels": str(n_labels),
                         "budget": runs.key(budget, seed, name)[0], "seed": str(seed),
                         "method": name, column: str(acc),
                         "seconds": f"{seconds:.2f}", **stamp,
                         "date": datetime.datetime.now().isoformat(timespec="seconds"), **done.extra})
            runs.save(rows, out / SWEEP_CSV, runs.fields_for(cfg.score))  # kept, whatever happens next
            finished += 1
            bar.update()
            if bar.disable:
                print(f"run {finished}/{len(plan)}: {rows[-1]['labels']} labels, seed {seed}, {name}: "
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


def rescore(csv_path: str | Path, budget: int | None, seed: int, name: str, data_dir: str | None = None,
            out: str | Path | None = None) -> tuple[float, float | None]:
    """Run one cell of a recorded sweep again: (budget, seed, method `name`) with the settings and
    encoder files its JSON records (their sha256 checked first), into `out` (default: a temporary
    folder); returns (the accuracy now, the one its row recorded, or None if it has no such row)."""
    import tempfile
    from dataclasses import fields

    from aecls.core.errors import AeclsError, check

    record, made = runs.record_of(csv_path), runs.recorded(csv_path)
    check(made is not None and "encoder" in record, f"{csv_path}: no recorded settings beside it "
          f"({Path(csv_path).with_suffix('.json').name}), so its runs cannot be made again")
    changed = runs.changed_encoders(record)
    if changed:
        raise AeclsError(f"{csv_path}: its encoder files changed since its rows: {'; '.join(changed)}")
    known = {f.name for f in fields(SweepConfig)}
    out = str(out or tempfile.mkdtemp(prefix="aecls_rescore_"))
    cfg = SweepConfig(**{k: v for k, v in made.items() if k in known}, labels=[budget], seeds=[seed],
                      methods=(name,), data_dir=data_dir, out=out)
    was = [r for r in runs.read_rows(csv_path) if runs.key(r["budget"], r["seed"], r["method"])
           == runs.key(budget, seed, name)]
    row = run_sweep(cfg, progress=False)[-1]
    return float(runs.accuracy(row)), (float(runs.accuracy(was[0])) if was else None)


# a curve row: its run (labels, seed, method), then the diagnostic at one step (or round)
CURVE_FIELDS = ("labels", "seed", "method")
PLOTS = {CURVES_CSV: (CURVES_PNG, pseudo_label_plot), ROUNDS_CSV: (ROUNDS_PNG, rounds_plot)}


def _read_curves(path: Path, rows: list[dict], curve: str = CURVES_CSV) -> list[dict]:
    """The rows of the curve file `path` (a method's `curve`: FixMatch's diagnostic, the rounds of
    propagation) of the runs in `rows` (a diagnostic: not checked further). A run stopped after
    its curve was saved but before its row has no row, so it runs again: its old curve is dropped
    here, or the rerun would add it twice. Curves written before they named their method are
    FixMatch's (pseudo_fixmatch's were not kept then)."""
    if not path.is_file():
        return []
    own = method_names(curve=curve)  # the methods whose runs keep this curve
    kept = {(r["labels"], r["seed"], r["method"]) for r in rows if r["method"] in own}
    with open(path, newline="") as f:
        curves = [{**c, "method": c.get("method") or "fixmatch"} for c in csv.DictReader(f)]
    return [c for c in curves if (c["labels"], c["seed"], c["method"]) in kept]


def write_outputs(rows: list[dict], out: Path, title: str = "", curves: dict[str, list[dict]] | None = None,
                  score: str = "test") -> dict[str, Path]:
    """The summaries of a finished sweep beside its rows, each naming the images its runs were
    scored on (`score`): sweep.md (mean ± sd table), sweep.png
    (accuracy vs labels); with FixMatch runs (fixmatch, pseudo_fixmatch), fixmatch_curves.png
    (the pseudo-label diagnostic vs steps), with `rounds`, rounds.png (per round). `curves`: each
    curve file's rows. sweep.csv and the curve CSVs are written run by
    run, sweep.json (the encoder and settings) by `runs.start`, all in `run_sweep`."""
    out.mkdir(parents=True, exist_ok=True)
    (out / SWEEP_MD).write_text(f"# Transfer sweep: {title}\n\n" + markdown_table(rows, score))
    stats = summarise(rows)
    accuracy_plot([(stats, m, {"label": m}) for m in method_names()], out / SWEEP_PNG, title, SCORES[score])
    written = [SWEEP_CSV, SWEEP_MD, SWEEP_PNG]
    for name, points in (curves or {}).items():
        if points:
            png, plot = PLOTS[name]
            plot(points, out / png, title)
            written += [name, png]
    return {name: out / name for name in written}
