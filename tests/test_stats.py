"""The one verdict rule (aecls.evaluation.stats.paired): a paired t-test over seeds, no verdict
below 3 pairs."""

from __future__ import annotations

import pytest

from aecls.evaluation.stats import MIN_PAIRED, holm, paired


@pytest.mark.parametrize(("a", "b", "verdict", "text"), [
    # two seeds: however large the difference, no verdict
    ([0.80, 0.82], [0.70, 0.71], "no verdict", "+10.50 ± 0.71 (2 seeds)"),
    # the same gain on every seed: a win the test cannot quantify, and needs not
    ([0.75, 0.65, 0.70], [0.70, 0.60, 0.65], "better", "+5.00 ± 0.00 (3 seeds, p < 0.001)"),
    ([0.70, 0.60, 0.65], [0.75, 0.65, 0.70], "worse", "-5.00 ± 0.00 (3 seeds, p < 0.001)"),
    # the old rule (mean above its std) called this a win; 3 seeds do not show it (p = 0.19)
    ([0.71, 0.702, 0.703], [0.70, 0.70, 0.70], "no difference", "+0.50 ± 0.44 (3 seeds, p = 0.19)"),
    ([0.72, 0.725, 0.73, 0.722], [0.70, 0.70, 0.71, 0.70], "better", "+2.18 ± 0.24 (4 seeds, p < 0.001)"),
    ([], [], "no verdict", "no shared seed"),
])
def test_a_verdict_needs_a_paired_test_and_three_seeds(a, b, verdict, text):
    t = paired(a, b)
    assert t.verdict == verdict and t.difference() == text
    assert (t.p is None) == (len(a) < MIN_PAIRED)
    said = t.says("simclr", "cae")
    assert said == {"better": "simclr beats cae", "worse": "simclr loses to cae",
                    "no difference": "simclr ties cae"}.get(verdict, said)
    if verdict == "no verdict":
        assert said.endswith("3 needed: no verdict")


def test_holm_multiplies_the_ith_smallest_by_m_minus_i_and_stays_monotone():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])  # 3 x .01, 2 x .03, max(.06, .04)
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert holm([]) == []


def test_the_spread_is_the_sample_sd_the_paired_test_uses():
    """"± sd" is the sample sd (n - 1): the one from which the paired t-test's p-value follows
    (t = mean / (sd / sqrt(n))); numpy's default (ddof 0) read sqrt(2/3) of it at 3 seeds."""
    import numpy as np
    from scipy.stats import t as student

    from aecls.evaluation.stats import SPREAD, mean_and_sd, mean_sd, sample_sd

    a, b = [0.75, 0.66, 0.70], [0.70, 0.60, 0.65]
    d = np.subtract(a, b)
    test = paired(a, b)
    assert test.sd == pytest.approx(np.std(d, ddof=1)) and test.sd != pytest.approx(np.std(d))
    p = 2 * student.sf(abs(test.mean) / (test.sd / np.sqrt(len(d))), len(d) - 1)
    assert test.p == pytest.approx(p)
    assert sample_sd([0.70, 0.60, 0.65]) == pytest.approx(0.05) and sample_sd([0.7]) == 0.0
    assert mean_sd([0.70, 0.60, 0.65], scale=100) == "65.00 ± 5.00"  # ddof 0 said 4.08
    assert mean_and_sd([0.70, 0.60, 0.65]) == pytest.approx((0.65, 0.05))
    assert "sample sd, n − 1" in SPREAD
