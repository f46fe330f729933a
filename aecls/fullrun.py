"""`aecls pipeline --full` after the fits: every method on the same kept encoders, every setting
chosen on validation images, the test set scoring the chosen ones once.

Stages (aecls.pipeline runs them; a finished one is skipped, a sweep continues row by row):
1. keep: each encoder (the study's best CAE, the DAE, SimCLR and Barlow Twins fits; the VAE's for
   its codes) saved as weights and config alone under OUT/encoders/; every sweep runs from these
   files and records their sha256 (aecls.transfer.runs), so `aecls results --check` verifies them
   and `aecls transfer rescore` re-runs any cell from them.
2. selection, scored on validation images only (OUT/selection/, aecls.transfer.selection): every
   cheap cell and graph algorithm on each encoder's codes at the few-label budgets; the graph on
   the best pair's codes side by side; per budget, a grid of the pseudo-label settings; then
   chosen.json: per budget the encoder to fine-tune, the graph's codes and algorithm, the
   pseudo-label settings, and the two best cells, which get extra seeds; then a grid of label
   propagation in rounds from those settings, whose per-round curves choose the rounds (into
   chosen.json, the best cells chosen again with them).
3. test (OUT/test/): the cheap methods on every encoder at every budget; at the few-label budgets,
   with the chosen settings, the graph, pseudo, rounds, fixmatch and pseudo_fixmatch; the extra seeds.
4. compare.json over the test sweeps: RESULTS.md's headline (`aecls results`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from aecls.core.errors import check
from aecls.core.paths import ARTIFACTS, LOG_DIR, ROUNDS_CSV, SWEEP_CSV, SWEEP_JSON, sha256_of
from aecls.modules.encoders import export_encoder, load_encoder
from aecls.report.build import latest
from aecls.transfer import graph
from aecls.transfer.compare import compare_sweeps
from aecls.transfer.config import DEFAULT_METHODS, SweepConfig
from aecls.transfer.methods import method
from aecls.transfer.selection import (
    GRAPH,
    GRID,
    ROUNDS_GRID,
    ROUNDS_MAX,
    best_cells,
    best_encoder,
    best_graph,
    best_point,
    best_round,
    grid_points,
    means,
    point_name,
    top_codes,
)
from aecls.transfer.sweep import markdown_table, run_sweep
from aecls.transfer.table import read

OUT = "results/pipeline_full"  # the full run's rows, kept encoders and comparison (committed)
STUDY_ENCODER = "cae"  # the study's best trial, under this name
TRANSFERRED = ("cae", "dae", "simclr", "barlow")  # frozen, fine-tuned, their codes in the graph
CODES_ONLY = ("vae",)  # its codes in the graph only
ENCODERS = (*TRANSFERRED, *CODES_ONLY)
PAIR = "pair"  # the selection sweep of the graph on the two best encoders' codes side by side
CHOSEN = "chosen"  # what the test sweeps of the chosen settings are called in chosen.json
CHOSEN_JSON = "chosen.json"
ROUNDS = "rounds"  # label propagation in rounds (issue #52): its selection, test folder and method
ROUNDS_JSON = "rounds.json"  # the rounds chosen after chosen.json, and the extra seeds' cells again
SEMI = ("fixmatch", "pseudo_fixmatch")  # the expensive methods: on the chosen encoder only
# what the chosen test sweeps differ in between budgets and from the encoders' own sweeps
VARIED = ("graph_codes", "pseudo_graph", "pseudo_keep", "pseudo_labelled_share", "pseudo_tune_steps",
          "rounds", "rounds_k", "rounds_weighting", "rounds_start", "rounds_keep")


@dataclass(frozen=True)
class Full:
    """What the full run measures. The defaults are `aecls pipeline --full`'s; the tiny-scale test
    shrinks them (and the runs, through `sweep`)."""

    out: str = OUT
    few: tuple[int, ...] = (100, 1000)  # budgets with selection, semi-supervised methods, extra seeds
    many: tuple[int | None, ...] = (10000, None)  # the cheap methods only
    seeds: int = 3
    extra_seeds: int = 2  # on top of `seeds`, for the best cells of each few-label budget
    best_cells: int = 2
    grid_seeds: int = 2  # seeds of each pseudo-label grid point
    grid: dict = field(default_factory=lambda: dict(GRID))
    rounds_grid: dict = field(default_factory=lambda: dict(ROUNDS_GRID))
    rounds_max: int = ROUNDS_MAX  # the length of the rounds grid's runs: the rounds chosen are <= it
    sweep: dict = field(default_factory=dict)  # SweepConfig settings on top of its defaults
    data_dir: str | None = None

    def describe(self) -> str:
        few, seeds = ", ".join(f"{b:,}" for b in self.few), self.seeds + self.extra_seeds
        return ("; every method aecls offers on the kept encoders, each setting chosen on validation "
                f"images, {seeds} seeds for the best {self.best_cells} cells at {few} labels")

    def path(self, *parts: str) -> Path:
        return Path(self.out).joinpath(*parts)

    def encoder(self, name: str) -> str:
        return str(self.path("encoders", f"{name}.pt"))

    def config(self, name: str, labels: list, score: str, methods: tuple[str, ...], out: Path,
               seeds: int | list[int] | None = None, **kw) -> SweepConfig:
        return SweepConfig(encoder=self.encoder(name), labels=list(labels), seeds=seeds or self.seeds,
                           methods=methods, score=score, out=str(out), data_dir=self.data_dir,
                           **{**self.sweep, **kw})


def swept() -> set[str]:
    """Every method the full run sweeps on test images: each encoder's cheap ones, the chosen
    graph's (among those), `pseudo` and the expensive ones."""
    return {*(m for e in ENCODERS for m in methods_of(e)), "pseudo", ROUNDS, *SEMI}


def methods_of(name: str) -> tuple[str, ...]:
    """The cheap methods swept on encoder `name`: the references (scratch, the baselines) with the
    study's encoder only, the encoder's own methods with each, the graph methods with every one."""
    if name in CODES_ONLY:
        return GRAPH
    own = tuple(m for m in DEFAULT_METHODS if method(m).uses_encoder or name == STUDY_ENCODER)
    return (*own, *GRAPH)


def _print(rows: list[dict], cfg: SweepConfig) -> None:
    print(markdown_table(rows, cfg.score), flush=True)


# -- 1. keep ---------------------------------------------------------------------------------------


def keep(full: Full, study: str) -> None:
    """Each encoder's weights and config alone (export_encoder) under OUT/encoders/, with
    encoders.json: where each came from, its size and sha256."""
    sources = {name: (Path(ARTIFACTS) / study if name == STUDY_ENCODER else latest(Path(LOG_DIR), name))
               for name in ENCODERS}
    missing = [n for n, p in sources.items() if p is None]
    check(not missing, f"no fit of {', '.join(missing)} under {LOG_DIR}/ to keep the encoder of")
    record = {}
    for name, source in sources.items():
        encoder, net, family = load_encoder(source)
        path = Path(full.encoder(name))
        path.parent.mkdir(parents=True, exist_ok=True)
        export_encoder(path, encoder, net, family)
        record[name] = {"source": str(source), "bytes": path.stat().st_size, "sha256": sha256_of(path)}
        print(f"kept {path} ({path.stat().st_size / 1e6:.2f} MB) from {source}", flush=True)
    full.path("encoders", "encoders.json").write_text(json.dumps(record, indent=2))


# -- 2. selection, on validation images ----------------------------------------------------------


def val_sweep(full: Full, name: str) -> None:
    cfg = full.config(name, full.few, "val", methods_of(name), full.path("selection", name))
    _print(run_sweep(cfg, progress=False), cfg)


def _val_cells(full: Full, names: list[str]):
    paths = {n: [str(full.path("selection", n, SWEEP_CSV))] for n in names}
    return means(read(paths).rows)


def pair_sweep(full: Full) -> None:
    """The graph methods on the two encoders whose codes label best, side by side."""
    top = top_codes(_val_cells(full, list(ENCODERS)), list(ENCODERS))
    cfg = full.config(top[0], full.few, "val", GRAPH, full.path("selection", PAIR),
                      graph_codes=[full.encoder(e) for e in top])
    _print(run_sweep(cfg, progress=False), cfg)


def _codes(full: Full, codes: str) -> list[str]:
    """The encoder files of the codes called `codes` (an encoder, or the pair)."""
    if codes != PAIR:
        return [full.encoder(codes)]
    made = json.loads(full.path("selection", PAIR, SWEEP_JSON).read_text())["settings"]
    return list(made["graph_codes"])


def _points(grid: dict) -> dict[str, dict]:
    return {point_name(p): p for p in grid_points(grid)}


def _base(full: Full, cells: pd.DataFrame, labels: int) -> dict:
    """At `labels`: the encoder fine-tuned and the graph (codes, method), from the selection rows'
    `cells` (every encoder's and the pair's)."""
    codes, graph_method = best_graph(cells, labels)
    return {"encoder": best_encoder(cells, labels, list(TRANSFERRED)), "codes": codes,
            "graph_method": graph_method, "graph_codes": _codes(full, codes),
            "pseudo_graph": graph.METHODS[graph_method][0]}


def grid_sweeps(full: Full, labels: int) -> None:
    """`pseudo` at every grid point, at `labels`, on the chosen encoder and graph."""
    base = _base(full, _val_cells(full, [*ENCODERS, PAIR]), labels)
    for name, point in _points(full.grid).items():
        cfg = full.config(base["encoder"], [labels], "val", ("pseudo",),
                          full.path("selection", f"pseudo_{labels}", name), seeds=full.grid_seeds,
                          graph_codes=base["graph_codes"], pseudo_graph=base["pseudo_graph"], **point)
        _print(run_sweep(cfg, progress=False), cfg)


def choose(full: Full) -> None:
    """chosen.json from the selection rows: per budget the settings and the cells for extra seeds."""
    out, points = {}, _points(full.grid)
    cells = _val_cells(full, [*ENCODERS, PAIR])  # read once, for every budget
    own, pair = cells[cells["sweep"].isin(ENCODERS)], cells[cells["sweep"] == PAIR]
    for b in full.few:
        base = _base(full, cells, b)
        paths = {n: [str(full.path("selection", f"pseudo_{b}", n, SWEEP_CSV))] for n in points}
        grid = means(read(paths).rows)
        point = best_point(grid, b, points)
        # the candidates for extra seeds: the cells whose test twin has the same settings
        twins = [own, grid[grid["sweep"] == point].assign(sweep=CHOSEN)]
        if base["codes"] == PAIR:  # the chosen graph on the pair's codes runs in the chosen sweep
            twins.append(pair[pair["method"] == base["graph_method"]].assign(sweep=CHOSEN))
        candidates = pd.concat(twins, ignore_index=True)
        out[str(b)] = {**base, "pseudo": points[point], "pseudo_point": point,
                       "extra": best_cells(candidates, b, full.best_cells),
                       "val_means": {f"{r.sweep} {r.method}": round(float(r.mean), 4)
                                     for r in candidates[candidates["labels"] == b].itertuples()}}
    full.path("selection").mkdir(parents=True, exist_ok=True)
    full.path("selection", CHOSEN_JSON).write_text(json.dumps(out, indent=2))
    for b, c in out.items():
        print(f"{b} labels: fine-tune {c['encoder']}; graph {c['graph_method']} on {c['codes']} codes; "
              f"pseudo {c['pseudo_point']}; extra seeds for {c['extra']}", flush=True)


def chosen(full: Full, labels: int) -> dict:
    return json.loads(full.path("selection", CHOSEN_JSON).read_text())[str(labels)]


def _settings(c: dict) -> dict:
    """One budget's chosen graph and pseudo-label settings (its chosen.json entry), as sweep settings."""
    return {"graph_codes": c["graph_codes"], "pseudo_graph": c["pseudo_graph"], **c["pseudo"]}


def rounds_grid(full: Full, labels: int) -> None:
    """`rounds` at every point of the rounds grid, `rounds_max` rounds a run, at `labels`, from the
    chosen encoder, graph and pseudo-label settings."""
    c = chosen(full, labels)
    for name, point in _points(full.rounds_grid).items():
        out = full.path("selection", f"{ROUNDS}_{labels}", name)
        cfg = full.config(c["encoder"], [labels], "val", (ROUNDS,), out, seeds=full.grid_seeds,
                          rounds=full.rounds_max, **_settings(c), **point)
        _print(run_sweep(cfg, progress=False), cfg)


def choose_rounds(full: Full) -> None:
    """The rounds into chosen.json, from the rounds grid's per-round curves (selection.best_round):
    per budget the rounds settings, and the cells for extra seeds chosen again, the chosen rounds
    among the candidates (its validation mean beside the others')."""
    path, points = full.path("selection", CHOSEN_JSON), _points(full.rounds_grid)
    out = json.loads(path.read_text())
    for b in full.few:
        curves = pd.concat([pd.read_csv(full.path("selection", f"{ROUNDS}_{b}", n, ROUNDS_CSV))
                            .assign(sweep=n) for n in points], ignore_index=True)
        point, rounds, mean = best_round(curves, b, points)
        c = out[str(b)]
        c["val_means"][f"{ROUNDS} {ROUNDS}"] = round(mean, 4)
        cells = [(*k.rsplit(" ", 1), v) for k, v in c["val_means"].items()]
        candidates = pd.DataFrame([{"sweep": w, "labels": b, "method": m, "mean": v} for w, m, v in cells])
        c.update(rounds={**points[point], "rounds": rounds}, rounds_point=point,
                 extra=best_cells(candidates, b, full.best_cells))
        print(f"{b} labels: rounds {point}, {rounds} round(s) (validation {mean:.2%}); extra seeds for "
              f"{c['extra']}", flush=True)
    path.write_text(json.dumps(out, indent=2))


def rounds_chosen(full: Full) -> Path | None:
    """chosen.json once it holds the rounds (choose_rounds ran), else None."""
    path = full.path("selection", CHOSEN_JSON)
    done = path.is_file() and all(ROUNDS in c for c in json.loads(path.read_text()).values())
    return path if done else None


# -- 3. test ---------------------------------------------------------------------------------------


def test_config(full: Full, name: str, **kw) -> SweepConfig:
    return full.config(name, [*full.few, *full.many], "test", methods_of(name), full.path("test", name), **kw)


def chosen_config(full: Full, labels: int, methods: tuple[str, ...], folder: str, **kw) -> SweepConfig:
    c = chosen(full, labels)
    return full.config(c["encoder"], [labels], "test", methods, full.path("test", f"{folder}_{labels}"),
                       **_settings(c), **kw)


def rounds_config(full: Full, labels: int) -> SweepConfig:
    return chosen_config(full, labels, (ROUNDS,), ROUNDS, **chosen(full, labels)[ROUNDS])


def chosen_methods(full: Full, labels: int) -> tuple[str, ...]:
    """The chosen graph (when on the pair's codes: on an encoder's own, its sweep has it) and pseudo."""
    c = chosen(full, labels)
    return (*((c["graph_method"],) if c["codes"] == PAIR else ()), "pseudo")


def test_sweep(full: Full, name: str) -> None:
    cfg = test_config(full, name)
    _print(run_sweep(cfg, progress=False), cfg)


def chosen_sweep(full: Full, labels: int) -> None:
    cfg = chosen_config(full, labels, chosen_methods(full, labels), CHOSEN)
    _print(run_sweep(cfg, progress=False), cfg)


def rounds_sweep(full: Full, labels: int) -> None:
    cfg = rounds_config(full, labels)
    _print(run_sweep(cfg, progress=False), cfg)


def semi_sweep(full: Full, labels: int, name: str) -> None:
    """One of the expensive methods (SEMI) with the chosen settings, in a folder of its own: the
    two run side by side."""
    cfg = chosen_config(full, labels, (name,), name)
    _print(run_sweep(cfg, progress=False), cfg)


def extra_seeds(full: Full) -> None:
    """Seeds `seeds` .. `seeds + extra_seeds - 1` of each budget's best cells, in their test sweeps."""
    seeds = list(range(full.seeds, full.seeds + full.extra_seeds))
    for b in full.few:
        for sweep, m in chosen(full, b)["extra"]:
            cfg = (chosen_config(full, b, (m,), CHOSEN) if sweep == CHOSEN else rounds_config(full, b)
                   if sweep == ROUNDS else test_config(full, sweep))
            cfg = replace(cfg, labels=[b], seeds=seeds, methods=(m,))
            run_sweep(cfg, progress=False)


def compared(full: Full) -> dict[str, list[str]]:
    """NAME -> test CSVs: an encoder's own sweep, and per budget the chosen settings' sweeps."""
    runs = {n: [str(full.path("test", n, SWEEP_CSV))] for n in ENCODERS}
    for b in full.few:
        name = f"{chosen(full, b)['encoder']} (chosen for {b})"
        runs[name] = [str(full.path("test", f"{f}_{b}", SWEEP_CSV)) for f in (CHOSEN, ROUNDS, *SEMI)]
    return runs


def compare(full: Full) -> None:
    written = compare_sweeps(list((n, p) for n, ps in compared(full).items() for p in ps), full.out,
                             vary=VARIED)
    print(f"written: {', '.join(map(str, written.values()))}", flush=True)



# -- what it costs ---------------------------------------------------------------------------------

# Seconds of one run on one thread of the 2-core CPU, another run beside it: the median `seconds`
# of the committed rows under results/ (2026-12-02 .. 06), per method at 100 / 1,000 / 10,000 /
# all labels. A graph method's first run of a seed builds the k-NN graph (the 100-label figure).
RUN_COST = {
    "scratch": (10, 12, 23, 131), "frozen": (6, 5, 7, 14), "finetune": (20, 22, 45, 257),
    "logreg_pixels": (0.4, 1.2, 12, 78), "logreg_pca": (0.3, 0.6, 1.7, 10),
    **{m: (18, 2, 2, 3) for m in graph.METHODS},
    "pseudo": (66, 62, 62, 62), "fixmatch": (923, 999, 999, 999), "pseudo_fixmatch": (905, 1162, 1162, 1162),
}
# Seconds of one core per stage before the sweeps: the full run of 2026-12-07 (docs/notebook.md,
# "The full run, one command"), each side stage's wall seconds at half a core (4 processes on 2
# cores), halved; the study's wall seconds as they were (it runs alone, on its own workers).
STAGE_COST = {"study": 1631, "export": 488, "fit cae": 330, "fit dae": 1098, "fit simclr": 547,
              "fit vae": 660, "fit barlow": 416, "classifier": 40, "keep": 5, "choose": 5, "compare": 20,
              "report": 16}


def run_cost(name: str, labels: int | None) -> float:
    """Estimated seconds of one run of method `name` at `labels` (RUN_COST; 30 s if unmeasured)."""
    column = 3 if labels is None else 0 if labels <= 100 else 1 if labels <= 1000 else 2
    return RUN_COST.get(name, (30,) * 4)[column]


def rounds_cost(full: Full, labels: int, seeds: int) -> tuple[int, float]:
    """(runs, estimated seconds on one thread) of `seeds` runs of `rounds` at `labels`: each round a
    fit as long as `pseudo`'s (not measured yet; `rounds_max` rounds: at most)."""
    return seeds, seeds * full.rounds_max * run_cost("pseudo", labels)


def sweep_cost(methods: tuple[str, ...], labels, seeds: int) -> tuple[int, float]:
    """(runs, estimated seconds on one thread) of a sweep."""
    return (len(methods) * len(labels) * seeds,
            seeds * sum(run_cost(m, b) for m in methods for b in labels))
