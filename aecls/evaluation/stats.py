"""How aecls writes a result over seeds, in one place: mean ± sd, where sd is the sample sd (n - 1,
the one the paired t-test uses too), and for a single value no ± at all (the spread of one number
is not zero, it is unknown), with n = 1 said instead."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# What "± sd" means, said once in the legend of every table that prints one.
SPREAD = "mean ± sd over seeds (sd: the sample sd, n − 1)"


def sample_sd(values: Sequence[float]) -> float:
    """The sample standard deviation (ddof = 1) of `values`; 0.0 for fewer than two, where no
    spread is printed (`spread`). numpy's default (ddof = 0) reads sqrt((n - 1) / n) low: at 3
    seeds 18 % under the sd the paired t-test uses."""
    v = np.asarray(values, dtype=float)
    return float(v.std(ddof=1)) if len(v) > 1 else 0.0


def mean_and_sd(values: Sequence[float]) -> tuple[float, float]:
    """(mean, sample sd) of `values`: what a figure's error bars show."""
    return float(np.mean(values)), sample_sd(values)


def spread(mean: float, sd: float, n: int, digits: int = 5) -> str:
    """"0.01027 ± 0.00012" for n >= 2; "0.01027 (n = 1)" for one value."""
    if n == 1:
        return f"{mean:.{digits}f} (n = 1)"
    return f"{mean:.{digits}f} ± {sd:.{digits}f}"


def mean_sd(values: Sequence[float], scale: float = 1.0, digits: int = 2) -> str:
    """`spread` of `values` x `scale` (100: accuracies as percentages)."""
    v = np.asarray(values, dtype=float) * scale
    return spread(float(v.mean()), sample_sd(v), len(v), digits)


# When one result is called better than another: a two-sided paired t-test over seeds (each seed
# is the same labelled subset for both) at this level, and only with at least this many pairs.
ALPHA = 0.05
MIN_PAIRED = 3


@dataclass(frozen=True)
class Paired:
    """`a - b` over paired seeds: n, mean and sd of the differences, the test's p-value (None
    below MIN_PAIRED pairs) and the verdict: "better", "worse", "no difference" or "no verdict"."""

    n: int
    mean: float
    sd: float
    p: float | None
    verdict: str

    def difference(self, scale: float = 100.0) -> str:
        """"+1.79 ± 0.89 (3 seeds, p = 0.04)"; the spread of one difference is unknown, so none."""
        if self.n == 0:
            return "no shared seed"
        seeds = f"{self.n} seed{'s' if self.n > 1 else ''}"
        p = "" if self.p is None else ", p < 0.001" if self.p < 0.001 else f", p = {self.p:.2g}"
        sd = f" ± {scale * self.sd:.2f}" if self.n > 1 else ""
        return f"{scale * self.mean:+.2f}{sd} ({seeds}{p})"

    def says(self, name: str, ref: str) -> str:
        """The verdict as a sentence: "simclr beats cae", "... ties ...", or why there is none."""
        if self.verdict == "no verdict":
            return f"{name} vs {ref}: {self.n} paired seed(s), {MIN_PAIRED} needed: no verdict"
        return f"{name} {dict(better='beats', worse='loses to').get(self.verdict, 'ties')} {ref}"


def too_few_seeds(tests: Sequence[Paired]) -> str | None:
    """Said once above a table none of whose tests has the seeds for a verdict (its verdict
    column then goes: the same "no verdict" in every row says nothing); None where any test has."""
    if not tests or any(t.p is not None for t in tests):
        return None
    counts = "/".join(str(n) for n in sorted({t.n for t in tests}))
    return (f"No verdict in this table: its cells have {counts} paired seed(s), and a paired test "
            f"needs {MIN_PAIRED} (sweeps of {MIN_PAIRED} seeds or more).")


def paired(a: Sequence[float], b: Sequence[float], alpha: float = ALPHA) -> Paired:
    """Compare `a` with `b`, given in the same seed order: scipy's paired t-test (ttest_rel), two
    sided at `alpha`. Why a test and not "the mean beats its std": with 2 or 3 seeds a difference
    larger than its spread happens by chance far too often to be called a win."""
    from scipy.stats import ttest_rel

    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    n = len(d)
    mean, sd = (float(d.mean()), sample_sd(d)) if n else (0.0, 0.0)
    if n < MIN_PAIRED:
        return Paired(n, mean, sd, None, "no verdict")
    if sd <= 1e-12:  # every seed moved by the same amount: the test is undefined, the answer is not
        p = 0.0 if mean != 0 else 1.0
    else:
        p = float(ttest_rel(a, b).pvalue)
    return Paired(n, mean, sd, p, verdict_of(mean, p, alpha))


def verdict_of(mean: float, p: float, alpha: float = ALPHA) -> str:
    """"better", "worse" or "no difference": the rule for a difference `mean` with p-value `p` (a
    test's own, or one adjusted for the table it stands in)."""
    return "no difference" if p >= alpha else "better" if mean > 0 else "worse"


def rule(better: str = "beats", worse: str = "loses to", tie: str = "ties") -> str:
    """The verdict rule as a table states it, in the words that table uses for its verdicts."""
    return (f"'{better}' / '{worse}': a two-sided paired t-test over the seeds (scipy.stats.ttest_rel) "
            f"gives p < {ALPHA}; otherwise '{tie}'; fewer than {MIN_PAIRED} paired seeds: no verdict")


def holm(ps: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment of the p-values of m tests read together: the i-th smallest is
    multiplied by m - i + 1, kept monotone, capped at 1. A table that calls a win at adjusted
    p < ALPHA then errs on any of its m tests with probability at most ALPHA. (Written here:
    scipy has only Benjamini-Hochberg, and statsmodels is a large dependency for these lines.)"""
    m = len(ps)
    adjusted = [1.0] * m
    running = 0.0
    for rank, i in enumerate(sorted(range(m), key=lambda i: ps[i])):
        running = max(running, min(1.0, (m - rank) * ps[i]))
        adjusted[i] = running
    return adjusted
