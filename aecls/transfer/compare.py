"""Two (or more) encoders' label-efficiency sweeps side by side: e.g. the encoder chosen by
reconstruction (cae_seed004) against the one chosen by the linear probe (cae_seed004_probe).

It reads the sweeps' CSVs and recomputes nothing. Differences are paired by seed: seed s draws
the same labelled subset in every sweep, so `B_s - A_s` removes the subset's own luck, and the
table gives their mean ± std over seeds.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from aecls.errors import AeclsError, check
from aecls.transfer.plots import accuracy_plot

PRETRAINED = ("frozen", "finetune")
MIN_PAIRED_SEEDS = 2  # a verdict needs a spread of paired differences


def read_sweep(path: str | Path) -> dict[tuple[int, str], dict[int, float]]:
    """{(labels, method): {seed: test accuracy}} from a sweep.csv."""
    path = Path(path)
    if path.is_dir():
        path = path / "sweep.csv"
    check(path.is_file(), f"no sweep CSV at {path} (run `aecls transfer sweep` first)")
    out: dict[tuple[int, str], dict[int, float]] = {}
    try:
        for r in csv.DictReader(open(path)):
            out.setdefault((int(r["labels"]), r["method"]), {})[int(r["seed"])] = float(r["test_acc"])
    except (KeyError, ValueError) as e:
        raise AeclsError(f"{path} is not a transfer sweep CSV ({e})") from e
    return out


def _pm(v: list[float] | np.ndarray) -> str:
    return f"{100 * np.mean(v):.2f} ± {100 * np.std(v):.2f}"


def compare_table(sweeps: dict[str, dict], methods: tuple[str, ...] = PRETRAINED) -> str:
    """Markdown: per label budget and method, each encoder's mean ± std and the paired difference
    of every later encoder to the first (the reference)."""
    names = list(sweeps)
    ref = names[0]
    head = ["labels", "method", *names, *(f"{n} - {ref}" for n in names[1:]), "verdict"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---:|" * 2 + "---:|" * (len(head) - 2)]
    budgets = sorted({b for s in sweeps.values() for b, m in s if m in methods})
    for b in budgets:
        for m in methods:
            runs = [sweeps[n].get((b, m), {}) for n in names]
            if not all(runs):
                continue
            cells = [_pm(list(r.values())) for r in runs]
            verdicts = []
            for n, r in zip(names[1:], runs[1:], strict=True):
                seeds = sorted(set(r) & set(runs[0]))
                d = np.array([r[s] - runs[0][s] for s in seeds])
                if len(seeds) < MIN_PAIRED_SEEDS:  # a std of one difference is 0: no evidence either way
                    cells.append(f"{100 * d.mean():+.2f} (1 seed)" if len(seeds) else "no shared seed")
                    verdicts.append(f"{n} vs {ref}: {len(seeds)} paired seed(s), no verdict")
                    continue
                cells.append(f"{100 * d.mean():+.2f} ± {100 * d.std():.2f} ({len(seeds)} seeds)")
                better = "beats" if d.mean() > d.std() else "loses to" if -d.mean() > d.std() else "ties"
                verdicts.append(f"{n} {better} {ref}")
            lines.append(f"| {b} | {m} | " + " | ".join([*cells, "; ".join(verdicts)]) + " |")
    return ("\n".join(lines) + "\n\nTest accuracy (%), mean ± std over seeds; differences paired by "
            "seed (same labelled subset). 'beats' / 'loses to': the mean difference is larger than "
            f"its std; otherwise 'ties'; no verdict with fewer than {MIN_PAIRED_SEEDS} paired seeds.\n")


def compare_sweeps(runs: dict[str, str], out: str | Path) -> dict[str, Path]:
    """Write compare.md and compare.png (accuracy vs. labels, one colour per encoder, frozen solid,
    finetune dashed) under `out`."""
    check(len(runs) >= 2, "compare needs at least two sweeps, NAME=PATH each")
    sweeps = {name: read_sweep(path) for name, path in runs.items()}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sources = "\n".join(f"- {name}: `{path}`" for name, path in runs.items())
    (out / "compare.md").write_text(f"# Transfer sweeps compared\n\n{sources}\n\n" + compare_table(sweeps))
    curves = []
    for colour, (name, sweep) in enumerate(sweeps.items()):
        stats = {k: (float(np.mean(list(v.values()))), float(np.std(list(v.values()))))
                 for k, v in sweep.items()}
        curves += [(stats, m, {"label": f"{name}, {m}", "linestyle": ls, "color": f"C{colour}"})
                   for m, ls in zip(PRETRAINED, ("-", "--"), strict=True)]
    accuracy_plot(curves, out / "compare.png", "encoders compared")
    return {"compare.md": out / "compare.md", "compare.png": out / "compare.png"}
