"""Two or more encoders' label-efficiency sweeps side by side: the question "which pretraining,
which transfer method, at how many labels?" (pretexts CAE, DAE, SimCLR x frozen, fine-tuned,
FixMatch x label budgets, beside the raw-pixel and PCA baselines), or two encoders of one pretext
(the one chosen by reconstruction against the one chosen by the linear probe).

It reads the sweeps' CSVs and recomputes nothing; one NAME given several CSVs merges them (a
sweep run in parts, e.g. FixMatch apart). Differences are paired by seed: seed s draws the same
labelled subset in every sweep and method, so `B_s - A_s` removes the subset's own luck, and the
tables give their mean ± sd (the sample sd) over seeds and a paired t-test's verdict
(aecls.evaluation.stats.paired).

Such a difference measures the encoders only when the sweeps were made alike: the settings each
sweep recorded (sweep.json, or NAME.json beside a copied NAME.csv) must agree in everything but
the encoder, where a method's runs depend on them (a FixMatch setting matters to FixMatch rows
only). Unlike sweeps are refused, naming the setting; `vary` names settings a comparison is
about (scored weights: eval_ema), and `allow_unlike` lays unlike sweeps side by side with no
verdict across them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from aecls.core.errors import AeclsError, check
from aecls.core.paths import COMPARE_JSON, COMPARE_MD, COMPARE_PNG, SWEEP_CSV
from aecls.evaluation.stats import SPREAD, Paired, mean_and_sd, mean_sd, paired, rule, too_few_seeds
from aecls.transfer.config import SCORES
from aecls.transfer.methods import method_names, methods, settings_read
from aecls.transfer.plots import panels_plot
from aecls.transfer.runs import sweep_settings
from aecls.transfer.table import Sweep, Table, read

COMPARED = ("encoder",)  # the setting a comparison of sweeps is about


def pretrained() -> tuple[str, ...]:
    """The methods whose result depends on the encoder: what a comparison of encoders is about."""
    return method_names(uses_encoder=True)


def references() -> tuple[str, ...]:
    """What every pretrained result must beat to count (scratch, raw pixels)."""
    return method_names(reference=True)
NO_VERDICT = "no verdict (unlike sweeps)"


def _csv_path(path: str | Path) -> Path:
    path = Path(path)
    if path.is_dir():
        path = path / SWEEP_CSV
    check(path.is_file(), f"no sweep CSV at {path} (run `aecls transfer sweep` first)")
    return path


def check_vary(vary: tuple[str, ...] | list[str]) -> None:
    """`vary` names sweep settings, and never `score`: validation and test accuracies are not one
    quantity, so no comparison sets them side by side."""
    check("score" not in vary, "score is never a setting a comparison may vary: a validation "
          "accuracy and a test accuracy are not one quantity; compare sweeps scored on the same images",
          "vary")
    known = [k for k in sweep_settings() if k not in COMPARED]
    unknown = [k for k in vary if k not in known]
    check(not unknown, f"unknown settings {unknown} to vary; the sweep settings are {', '.join(known)}",
          "vary")


def differences(table: Table, vary: tuple[str, ...] | list[str] = ()) -> tuple[list[str], list[str]]:
    """(unlike, varied): one line per setting in which the sweeps' CSVs differ where it matters,
    besides the encoder (and the score, which `read_compared` refuses to mix): a setting counts
    between the CSVs that ran a method reading it (the methods' registry; a setting no method
    reads, between all). `varied` for the settings in `vary`, `unlike` for the others and for CSVs
    that recorded no settings."""
    check_vary(vary)
    name_of = table.sweep_of
    made = table.settings
    unlike = [f"{name_of[p]} ({p}): no settings recorded beside it ({Path(p).with_suffix('.json').name})"
              for p, s in made.items() if s is None]
    known = {p: s for p, s in made.items() if s is not None}
    ran = {p: table.methods_of(p) for p in known}
    varied = []
    for key in sorted({k for s in known.values() for k in s} - {*COMPARED, "score"}):
        readers = [m for m, keys in settings_read().items() if key in keys]
        # the groups of CSVs that must agree on `key`: those that ran one method that reads it
        groups = [[p for p in known if m in ran[p]] for m in readers] if readers else [list(known)]
        shown: dict[str, None] = {}
        for group in groups:
            values = {p: known[p].get(key) for p in group}
            if len({json.dumps(v, sort_keys=True) for v in values.values()}) > 1:
                shown.update(dict.fromkeys(f"{name_of[p]} {v!r}" for p, v in values.items()))
        if shown:
            (varied if key in vary else unlike).append(f"{key}: " + ", ".join(shown))
    return unlike, varied


def check_alike(unlike: list[str], allow_unlike: bool) -> None:
    """Unlike sweeps are a user error unless allowed (then every verdict across them is dropped);
    the error names every setting that differs."""
    check(not unlike or allow_unlike,
          f"the sweeps are unlike ({'; '.join(unlike)}): a difference between them would "
          "measure those settings as well as the encoders; compare sweeps made with the same settings, "
          "name the settings the comparison is about (vary), or allow unlike sweeps (no verdict across "
          "them)", setting=("vary", "allow_unlike"))


def _stats(sweep: Sweep) -> dict[tuple[int, str], tuple[float, float]]:
    """{(labels, method): (mean, sample sd) over seeds}, as the figure wants them."""
    return {k: mean_and_sd(list(v.values())) for k, v in sweep.items()}


def _pm(v: list[float] | np.ndarray) -> str:
    return mean_sd(v, scale=100)


def paired_by_seed(a: dict[int, float], b: dict[int, float]) -> Paired:
    """`a - b` over the seeds both have (the same labelled subsets), by the one rule of
    aecls.evaluation.stats."""
    seeds = sorted(set(a) & set(b))
    return paired([a[s] for s in seeds], [b[s] for s in seeds])


def compare_table(sweeps: dict[str, dict], methods: tuple[str, ...] | None = None,
                  verdicts: bool = True, score: str = "test") -> str:
    """Markdown: per label budget and method, each encoder's mean ± sd and the paired difference
    of every later encoder to the first (the reference), with the verdict of a paired test; a row
    wherever the reference and another sweep have the cell ("-" for the sweeps without it). A
    table none of whose tests has the seeds says so once above it, with no verdict column."""
    methods = pretrained() if methods is None else methods
    names = list(sweeps)
    ref = names[0]
    budgets = sorted({b for s in sweeps.values() for b, m in s if m in methods})
    rows = []
    for b in budgets:
        for m in methods:
            runs = [sweeps[n].get((b, m), {}) for n in names]
            if runs[0] and any(runs[1:]):
                rows.append((b, m, runs, [paired_by_seed(r, runs[0]) if r else None for r in runs[1:]]))
    if not rows:
        return f"No other sweep ran a method of {ref}'s at one of its budgets: nothing to pair.\n"
    all_tests = [t for *_, tests in rows for t in tests if t is not None]
    few = too_few_seeds(all_tests)
    head = ["labels", "method", *names, *(f"{n} - {ref}" for n in names[1:]), *([] if few else ["verdict"])]
    lines = ["| " + " | ".join(head) + " |", "|" + "---:|" * 2 + "---:|" * (len(head) - 2)]
    for b, m, runs, tests in rows:
        cells = [_pm(list(r.values())) if r else "-" for r in runs]
        cells += [t.difference() if t else "-" for t in tests]
        if not few:
            said = [t.says(n, ref) for n, t in zip(names[1:], tests, strict=True) if t]
            cells.append("; ".join(said if verdicts else [NO_VERDICT]))
        lines.append(f"| {b} | {m} | " + " | ".join(cells) + " |")
    n_tests = sum(t.p is not None for t in all_tests)
    return (_above(few) + "\n".join(lines) + f"\n\n{_legend(score)}; differences "
            "paired by seed (same labelled subset), with the test's p-value. "
            f"{rule()}.{uncorrected(n_tests)}\n")


def _legend(score: str) -> str:
    """What every accuracy table says first: which images scored it, and what its ± is."""
    return f"{SCORES[score].capitalize()} (%), {SPREAD}"


def _above(few: str | None) -> str:
    """What a table says above itself: why it has no verdict, where that is so."""
    return f"{few}\n\n" if few else ""


def against_baselines(sweeps: dict[str, Sweep], verdicts: bool = True) -> str:
    """Markdown: every pretrained cell (an encoder's frozen, fine-tuned, semi-supervised runs)
    against training from scratch and logistic regression on raw pixels at the same budget and
    seeds (the same labelled subsets), from whichever sweep ran those baselines."""
    base = {}
    for sweep in sweeps.values():
        for (b, m), runs in sweep.items():
            if m in references():
                base.setdefault((b, m), runs)
    rows = [(b, m, name, runs, [paired_by_seed(runs, base[(b, bm)]) if (b, bm) in base else None
                                for bm in references()])
            for (b, m), name, runs in sorted((k, n, r) for n, s in sweeps.items() for k, r in s.items()
                                             if k[1] in pretrained())]
    if not base or not rows:
        return "No sweep ran a baseline (scratch, logreg_pixels) beside a pretrained method.\n"
    all_tests = [t for *_, tests in rows for t in tests if t is not None]
    few = too_few_seeds(all_tests)
    lines = ["| labels | encoder | method | accuracy | " + " | ".join(f"- {m}" for m in references()) + " |",
             "|---:|---|---|---:|" + "---:|" * len(references())]
    for b, m, name, runs, tests in rows:
        cells = ["-" if t is None else t.difference() if few else
                 f"{t.difference()}: {t.verdict if verdicts else NO_VERDICT}" for t in tests]
        lines.append(f"| {b} | {name} | {m} | {_pm(list(runs.values()))} | " + " | ".join(cells) + " |")
    n_tests = sum(t.p is not None for t in all_tests)
    return (_above(few) + "\n".join(lines) + "\n\nPercentage points, paired by seed; "
            f"{rule('better', 'worse', 'no difference')}.{uncorrected(n_tests)}\n")


def uncorrected(n: int) -> str:
    """What a table of `n` uncorrected tests says of itself."""
    return (f" This table holds {n} paired tests, each read at p < 0.05 uncorrected: among {n}, about "
            f"{0.05 * n:.1f} such verdicts can come by chance, so one alone is a lead; RESULTS.md's "
            "headline table corrects its tests for their number (Holm).") if n > 1 else ""


def _cells(sweeps: dict[str, Sweep], b: int) -> dict[tuple[str, str], list[float]]:
    """{(method, sweep): accuracies} at budget `b`, methods in table order."""
    return {(m, n): list(s[(b, m)].values()) for m in methods() for n, s in sweeps.items() if (b, m) in s}


def best_per_budget(sweeps: dict[str, Sweep], verdicts: bool = True) -> list[str]:
    """Per budget, the cell with the highest mean and its paired difference to the runner-up, with
    the test's verdict (none where `verdicts` is off), as Markdown list items."""
    rows = []
    for b in sorted({b for s in sweeps.values() for b, _ in s}):
        cells = _cells(sweeps, b)
        top, *rest = sorted(cells, key=lambda k: -np.mean(cells[k]))
        # the margin over the runner-up, paired by seed, and whether a test backs it
        t = paired_by_seed(sweeps[top[1]][(b, top[0])], sweeps[rest[0][1]][(b, rest[0][0])]) if rest else None
        rows.append((b, cells, top, rest[0] if rest else None, t))
    few = too_few_seeds([t for *_, t in rows if t is not None])
    lines = [few, ""] if few else []
    for b, cells, top, second, t in rows:
        line = f"- {b} labels: {top[1]} {top[0]}, {_pm(cells[top])} %"
        if t is not None:
            said = "" if few else ", " + (t.says(f"{top[1]} {top[0]}", f"{second[1]} {second[0]}")
                                          if verdicts else NO_VERDICT)
            line += f"; over the runner-up, {second[1]} {second[0]}: {t.difference()}{said}"
        lines.append(line)
    return lines


def best_text(score: str) -> str:
    """What the list of `best_per_budget` says above itself."""
    return ("Highest mean per budget, and its paired difference to the runner-up (both picked on the "
            f"same {SCORES[score]} that is tested, so the margin is optimistic; one uncorrected test per "
            "budget, each its own budget's question)")


def side_by_side(sweeps: dict[str, Sweep], seconds: dict[str, float], verdicts: bool = True,
                 score: str = "test") -> str:
    """Markdown: per label budget and method (baselines last), every sweep's mean ± sd, the best
    cell of each budget in bold (and tested against the runner-up); then each sweep's summed run
    time."""
    names = list(sweeps)
    budgets = sorted({b for s in sweeps.values() for b, _ in s})
    ran = [m for m in methods() if any(m == k[1] for s in sweeps.values() for k in s)]
    lines = ["| labels | method | " + " | ".join(names) + " |", "|---:|---|" + "---:|" * len(names)]
    for b in budgets:
        cells = _cells(sweeps, b)
        top = max(cells, key=lambda k: np.mean(cells[k]))
        for m in ran:
            row = [(f"**{_pm(cells[(m, n)])}**" if (m, n) == top and verdicts else _pm(cells[(m, n)]))
                   if (m, n) in cells else "-" for n in names]
            if any(c != "-" for c in row):
                lines.append(f"| {b} | {m} | " + " | ".join(row) + " |")
    times = ", ".join(f"{n} {seconds[n]:.0f} s" for n in names)
    return ("\n".join(lines) + f"\n\n{_legend(score)} (the highest mean of each "
            "budget in bold; logreg_pixels does not use the encoder, so it is the same wherever it ran). "
            f"{best_text(score)}; {rule()}:\n\n" + "\n".join(best_per_budget(sweeps, verdicts))
            + f"\n\nRun time, summed over each sweep's runs: {times}.\n")


def semi_vs_supervised(sweeps: dict[str, Sweep], verdicts: bool = True) -> str:
    """Markdown: per sweep and budget, each method minus each method it is paired against (its
    registry entry's paired_against: a semi-supervised method against fine-tuning, ...) from the
    same encoder, paired by seed, with the paired test's verdict."""
    rows = [(name, b, m, against, base, semi, paired_by_seed(semi, base))
            for name, sweep in sweeps.items() for (b, m), semi in sorted(sweep.items())
            for against in methods()[m].paired_against if (base := sweep.get((b, against)))]
    if not rows:
        return ("No sweep has a semi-supervised method beside one it builds on (finetune, ...) at the "
                "same budget.\n")
    few = too_few_seeds([t for *_, t in rows])
    lines = ["| encoder | labels | method | against | its accuracy | method's accuracy | difference |"
             + ("" if few else " verdict |"), "|---|---:|---|---|---:|---:|---:|" + ("" if few else "---|")]
    for name, b, m, against, base, semi, t in rows:
        verdict = "" if few else f" {t.says(m, against) if verdicts else NO_VERDICT} |"
        lines.append(f"| {name} | {b} | {m} | {against} | {_pm(list(base.values()))} "
                     f"| {_pm(list(semi.values()))} | {t.difference()} |{verdict}")
    return _above(few) + "\n".join(lines) + f"\n\n{rule()}.\n"


def read_compared(paths: dict[str, list[str]]) -> tuple[Table, str]:
    """(the sweeps' table, the images every run was scored on) from NAME -> its sweep CSVs (a name
    given several merges them). Sweeps scored on other images are refused, whatever else allows
    unlike sweeps: a validation accuracy is no test accuracy."""
    table = read(paths)
    scores = table.scores
    if len(set(scores.values())) > 1:
        said = "; ".join(f"{SCORES[sc]}: " + ", ".join(p for p, s in scores.items() if s == sc)
                         for sc in SCORES if sc in scores.values())
        raise AeclsError(f"the sweeps were scored on different images ({said}): validation and test "
                         "accuracies are not compared; compare sweeps of one score")
    return table, next(iter(scores.values()), "test")


def settings_text(unlike: list[str], varied: list[str]) -> str:
    """What the sweeps' recorded settings say of the comparison, as Markdown."""
    if not unlike and not varied:
        return "The sweeps were made with the same settings but the encoder (their recorded settings).\n"
    lines = []
    if varied:
        lines += ["Varied on purpose (what this comparison is about):", "", *(f"- {v}" for v in varied), ""]
    if unlike:
        lines += ["**Unlike sweeps**: they differ in settings other than the encoder, so no verdict is "
                  "given across them:", "", *(f"- {u}" for u in unlike), ""]
    return "\n".join(lines)


@dataclass(frozen=True)
class Compared:
    """Sweeps read for a comparison: their table, the images they were scored on (`score`, one for
    all), and the settings in which they differ (`differences`)."""

    table: Table
    score: str
    unlike: list[str]
    varied: list[str]

    @cached_property
    def sweeps(self) -> dict[str, Sweep]:
        """By name, {(labels, method): {seed: accuracy}}: built once, read by every table."""
        return self.table.sweeps()


def read_checked(paths: dict[str, list[str]], vary: tuple[str, ...] | list[str] = (),
                 allow_unlike: bool = False) -> Compared:
    """The sweeps read once (one score for all), their settings compared (`differences`) and
    unlike sweeps refused unless allowed."""
    table, score = read_compared(paths)
    unlike, varied = differences(table, vary)
    check_alike(unlike, allow_unlike)
    return Compared(table, score, unlike, varied)


def compare_markdown(paths: dict[str, list[str]], vary: tuple[str, ...] | list[str] = (),
                     allow_unlike: bool = False, compared: Compared | None = None) -> str:
    """The comparison as Markdown sections (the settings, side by side, paired differences to the
    first sweep, semi-supervised vs what it builds on), computed from the sweeps' CSVs (or the
    `compared` already read): what compare.md holds under its title, and what the report shows.
    Unlike sweeps: see `check_alike`."""
    c = compared or read_checked(paths, vary, allow_unlike)
    v = not c.unlike
    sweeps = c.sweeps
    sources = "\n".join(f"- {name}: " + ", ".join(f"`{p}`" for p in ps) for name, ps in paths.items())
    return (f"{sources}\n\n{settings_text(c.unlike, c.varied)}"
            f"\n## Side by side\n\n{side_by_side(sweeps, c.table.seconds(), v, c.score)}"
            f"\n## Paired differences to {next(iter(sweeps))}\n\n"
            f"{compare_table(sweeps, verdicts=v, score=c.score)}"
            f"\n## Against scratch and raw pixels, same subsets\n\n{against_baselines(sweeps, v)}"
            f"\n## Semi-supervised vs what it builds on, same encoder\n\n{semi_vs_supervised(sweeps, v)}")


def provenance(table: Table) -> str:
    """Where the rows came from: each distinct (command, commit, machine) with its dates and
    row count; rows written before sweeps recorded it say so."""
    rows = table.rows.assign(command=table.rows["command"].replace("", "not recorded"),
                             commit=table.rows["commit"].replace("", "-"),
                             machine=table.rows["machine"].replace("", "-"))
    lines = ["| rows | dates | command | commit | machine |", "|---:|---|---|---|---|"]
    for (command, commit, machine), g in rows.groupby(["command", "commit", "machine"], sort=False):
        lines.append(f"| {len(g)} | {_span(list(g['date'].str[:10]))} | `{command}` | {commit} | {machine} |")
    return "\n".join(lines) + "\n"


def _span(dates: list[str]) -> str:
    days = sorted({d for d in dates if d})
    return days[0] if len(days) == 1 else f"{days[0]} to {days[-1]}" if days else "-"


def provenance_line(table: Table) -> str:
    """The rows' provenance in one line: how many, when, from how many commands, which machines."""
    rows = table.rows
    commands = set(rows["command"].replace("", "not recorded"))
    machines = set(rows["machine"].replace("", "not recorded"))
    return (f"{len(rows)} rows, {_span(list(rows['date'].str[:10]))}, from {len(commands)} command(s) on "
            f"{'; '.join(sorted(machines))}, torch threads and seeds as each row records")


def read_record(folder: str | Path) -> tuple[dict[str, list[str]], dict]:
    """(NAME -> sweep CSVs, the comparison's options: vary, allow_unlike) from FOLDER's
    compare.json, the record `compare_sweeps` writes."""
    path = Path(folder) / COMPARE_JSON
    if not path.is_file():
        raise AeclsError(f"no {COMPARE_JSON} in {folder}: make it with `aecls transfer compare NAME=CSV "
                         f"NAME=CSV ... --out {folder}` (docs/transfer.md, \"A results folder\")")
    try:
        record = json.loads(path.read_text())
        runs = {str(k): [str(p) for p in v] for k, v in record["runs"].items()}
        options = {"vary": [str(k) for k in record.get("vary", [])],
                   "allow_unlike": bool(record.get("allow_unlike", False))}
    except (OSError, ValueError, KeyError, AttributeError, TypeError) as e:
        raise AeclsError(f"{path} is not a comparison's record ({type(e).__name__}: {e})") from e
    return runs, options


def compare_page(paths: dict[str, list[str]], vary: tuple[str, ...] | list[str] = (),
                 allow_unlike: bool = False) -> tuple[str, Compared]:
    """compare.md's text for NAME -> sweep CSVs, and the comparison read to write it (unlike
    sweeps refused as in `read_checked`); `aecls results --check` compares it with the file."""
    compared = read_checked(paths, vary, allow_unlike)
    markdown = compare_markdown(paths, compared=compared)
    return (f"# Transfer sweeps compared\n\n{markdown}"
            f"\n## Where the rows came from\n\n{provenance(compared.table)}"), compared


def compare_sweeps(runs: dict[str, str] | list[tuple[str, str]], out: str | Path,
                   vary: tuple[str, ...] | list[str] = (), allow_unlike: bool = False) -> dict[str, Path]:
    """Write compare.md (side by side, paired differences to the first sweep, semi-supervised vs
    what it builds on), compare.png (accuracy vs. labels, a panel per method, a colour per encoder,
    scratch and raw pixels in black) and compare.json (which CSVs and options, for the report and
    `aecls results`) under `out`. `runs`: NAME -> PATH, or (NAME, PATH) pairs, where a NAME given
    several paths merges them; unlike sweeps are refused (`vary`, `allow_unlike`: see the module)."""
    pairs = list(runs.items()) if isinstance(runs, dict) else list(runs)
    paths: dict[str, list[str]] = {}
    named: dict[Path, str] = {}
    for name, path in pairs:
        csv_path = _csv_path(path)
        again = named.setdefault(csv_path.resolve(), name)
        check(again == name and str(csv_path) not in paths.get(name, []),
              f"{csv_path} is given twice ({again} and {name}): a sweep compared with itself differs "
              "by nothing; give each sweep once")
        paths.setdefault(name, []).append(str(csv_path))
    check(len(paths) >= 2, "compare needs at least two sweeps, NAME=PATH each")
    text, compared = compare_page(paths, vary, allow_unlike)  # refuses unlike sweeps: nothing written
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / COMPARE_MD).write_text(text)
    options = {**({"vary": sorted(vary)} if vary else {}), **({"allow_unlike": True} if allow_unlike else {})}
    (out / COMPARE_JSON).write_text(json.dumps({"runs": paths, **options}, indent=2))
    panels_plot({name: _stats(sweep) for name, sweep in compared.sweeps.items()}, pretrained(), references(),
                out / COMPARE_PNG, "encoders compared, one panel per method", SCORES[compared.score])
    return {name: out / name for name in (COMPARE_MD, COMPARE_PNG, COMPARE_JSON)}
