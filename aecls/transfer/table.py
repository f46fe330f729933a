"""Every sweep row in one long table (a pandas DataFrame, a row a run), read once: the sweep's own
summary, `transfer compare`, the report and RESULTS.md's generated blocks are views of it (cells
grouped by sweep, budget and method; seeds paired across them). One reader of the CSVs (runs.py),
one mean and sd (aecls.evaluation.stats), one paired difference (compare.paired_by_seed)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from aecls.core.errors import AeclsError, check
from aecls.evaluation.stats import SPREAD, mean_and_sd, mean_sd
from aecls.transfer.config import SCORES
from aecls.transfer.methods import method_names
from aecls.transfer.runs import accuracy, read_rows, recorded, score_of

# one (labels, method) cell of a sweep: {seed: accuracy}
Sweep = dict[tuple[int, str], dict[int, float]]
PROVENANCE = ("command", "commit", "date", "machine")


def frame(rows: list[dict], sweep: str = "", path: str = "") -> pd.DataFrame:
    """Sweep rows (dicts of strings, as sweep.csv holds them) as the long table: sweep, csv,
    labels, method, seed, acc, seconds and the rows' provenance."""
    out = pd.DataFrame({
        "sweep": sweep, "csv": path,
        "labels": [int(r["labels"]) for r in rows], "method": [r["method"] for r in rows],
        "seed": [int(r["seed"]) for r in rows], "acc": [float(accuracy(r)) for r in rows],
        "seconds": [float(r.get("seconds") or 0) for r in rows],
        **{k: [r.get(k) or "" for r in rows] for k in PROVENANCE}})
    return out.astype({"sweep": str, "csv": str, "method": str, "labels": int, "seed": int})


@dataclass(frozen=True)
class Table:
    """The runs of one or more sweeps, by name (a name may merge several CSVs of one encoder):
    `rows` the long table; per CSV, the settings recorded beside it (None: none) and the images
    its runs were scored on."""

    rows: pd.DataFrame
    settings: dict[str, dict | None]
    scores: dict[str, str]
    names: tuple[str, ...]
    sweep_of: dict[str, str]  # csv -> the name it was given

    def sweep(self, name: str) -> Sweep:
        """{(labels, method): {seed: accuracy}} of the sweep `name`."""
        own = self.rows[self.rows["sweep"] == name]
        return {(int(b), str(m)): dict(zip(g["seed"].astype(int), g["acc"].astype(float), strict=True))
                for (b, m), g in own.groupby(["labels", "method"], sort=False)}

    def sweeps(self) -> dict[str, Sweep]:
        return {name: self.sweep(name) for name in self.names}

    def seconds(self) -> dict[str, float]:
        """Each sweep's runs' seconds, summed."""
        summed = self.rows.groupby("sweep")["seconds"].sum()
        return {name: float(summed.get(name, 0.0)) for name in self.names}

    def methods_of(self, path: str) -> set[str]:
        """The methods the CSV `path` ran."""
        return set(self.rows.loc[self.rows["csv"] == path, "method"])


def read(paths: dict[str, list[str]]) -> Table:
    """NAME -> its sweep CSVs, read once into a Table. A run (labels, method, seed) in two CSVs of
    one name is an error, and so is a file that is no sweep CSV."""
    parts, settings, scores = [], {}, {}
    for name, ps in paths.items():
        for p in ps:
            try:
                scores[p] = score_of(p)
                parts.append(frame(read_rows(p), name, p))
            except (KeyError, ValueError, csv.Error, UnicodeDecodeError) as e:
                raise AeclsError(f"{p} is not a transfer sweep CSV ({e})") from e
            settings[p] = recorded(p)
    rows = pd.concat(parts, ignore_index=True) if parts else frame([])
    twice = rows[rows.duplicated(["sweep", "labels", "method", "seed"], keep="first")]
    check(twice.empty, "" if twice.empty else (
        f"{twice.iloc[0]['sweep']}: {twice.iloc[0]['method']} at {twice.iloc[0]['labels']} labels, seed "
        f"{twice.iloc[0]['seed']} is in two of its CSVs (the second: {twice.iloc[0]['csv']}); give each "
        "run once"))
    return Table(rows, settings, scores, tuple(paths), {p: name for name, ps in paths.items() for p in ps})


def read_one(path: str | Path) -> Table:
    """One sweep CSV, as a Table of one sweep named after nothing."""
    return read({"": [str(path)]})


def cells(rows: pd.DataFrame, by: tuple[str, ...] = ("sweep", "labels", "method")) -> pd.DataFrame:
    """Per group of `by`: the accuracies over seeds, n, their mean and sample sd (the one rule of
    aecls.evaluation.stats), in the rows' order."""
    grouped = rows.groupby(list(by), sort=False)["acc"].agg(list).reset_index(name="accs")
    stats = grouped["accs"].map(mean_and_sd)
    return grouped.assign(n=grouped["accs"].map(len), mean=[m for m, _ in stats], sd=[s for _, s in stats])


def summarise(rows: list[dict]) -> dict[tuple[int, str], tuple[float, float]]:
    """{(labels, method): (mean, sample sd) of the accuracy over seeds} of one sweep's rows (what
    its figure draws)."""
    return {(int(c.labels), str(c.method)): (c.mean, c.sd) for c in cells(frame(rows)).itertuples()}


def markdown_table(rows: list[dict], score: str) -> str:
    """Markdown: per budget, each method's accuracy on the `score` images (config.SCORES), mean ± sd
    over seeds, methods in the registry's order: sweep.md and the report's transfer table."""
    table = cells(frame(rows))
    by = {(int(c.labels), str(c.method)): mean_sd(c.accs, scale=100) for c in table.itertuples()}
    ran = set(table["method"])
    methods = [m for m in method_names() if m in ran]
    seeds = len({r["seed"] for r in rows})
    lines = [f"| labels | {' | '.join(methods)} |", "|---:|" + "---:|" * len(methods)]
    for b in sorted(set(table["labels"])):
        lines.append(f"| {b} | {' | '.join(by.get((b, m), '-') for m in methods)} |")
    return "\n".join(lines) + f"\n\n{SCORES[score].capitalize()} (%), {SPREAD} ({seeds} seed(s)).\n"
