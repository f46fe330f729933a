"""How aecls writes a result over seeds, in one place: mean ± sd, and for a single value no ± at all
(the spread of one number is not zero, it is unknown), with n = 1 said instead."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def spread(mean: float, sd: float, n: int, digits: int = 5) -> str:
    """"0.01027 ± 0.00012" for n >= 2; "0.01027 (n = 1)" for one value."""
    if n == 1:
        return f"{mean:.{digits}f} (n = 1)"
    return f"{mean:.{digits}f} ± {sd:.{digits}f}"


def mean_sd(values: Sequence[float], scale: float = 1.0, digits: int = 2) -> str:
    """`spread` of `values` x `scale` (100: accuracies as percentages)."""
    v = np.asarray(values, dtype=float) * scale
    return spread(float(v.mean()), float(v.std()), len(v), digits)
