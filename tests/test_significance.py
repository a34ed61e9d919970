"""significance.compare against the statistics written out in by_hand.py (the code calls scipy and statsmodels)."""

from __future__ import annotations

import math

import pytest
from scipy import stats

from by_hand import detectable_independent_by_hand, detectable_paired_by_hand, pooled_sd, welch_by_hand
from mila_bench import significance

# Unequal sizes and spreads, so Welch's df (≈ 2.1 here) is far from the pooled n1 + n2 − 2 = 6
# and a CI on the wrong df, or Student's pooled variance, is visibly off.
WIDE = {10: 83.0, 11: 86.1, 12: 80.5}
NARROW = {0: 80.12, 1: 81.33, 2: 80.71, 3: 80.95, 4: 80.40}


@pytest.mark.parametrize(("ours", "baseline"), [(WIDE, NARROW), (NARROW, WIDE)], ids=["3 vs 5", "5 vs 3"])
def test_welch_delta_ci_p_and_detectable_match_the_hand_computation(ours: dict, baseline: dict) -> None:
    got = significance.compare(ours, baseline)
    a, b = list(ours.values()), list(baseline.values())
    delta, low, high, p = welch_by_hand(a, b)
    assert (got.test, got.n) == ("Welch", 3)
    assert (got.delta, got.ci_low, got.ci_high, got.p) == pytest.approx((delta, low, high, p), rel=1e-9)
    assert got.detectable == pytest.approx(detectable_independent_by_hand(len(a), len(b), pooled_sd(a, b)), rel=1e-4)
    # these values tell the two apart: Student's interval (pooled variance, n1 + n2 − 2 df) is less than half as wide
    student = stats.t.ppf(0.975, len(a) + len(b) - 2) * pooled_sd(a, b) * math.sqrt(1 / len(a) + 1 / len(b))
    assert high - low > 4 * student


def test_paired_detectable_matches_the_hand_computation() -> None:
    ours = {0: 84.20, 1: 84.98, 2: 83.77, 3: 84.51}
    base = {0: 80.12, 1: 81.33, 2: 80.71, 3: 80.05}
    got = significance.compare(ours, base)
    differences = [ours[s] - base[s] for s in ours]
    sd = math.sqrt(sum((d - sum(differences) / 4) ** 2 for d in differences) / 3)
    assert (got.test, got.n) == ("paired", 4)
    assert got.detectable == pytest.approx(detectable_paired_by_hand(4, sd), rel=1e-4)


def test_too_few_values_compare_to_nothing_and_a_flat_pair_cannot_detect() -> None:
    assert significance.compare({0: 1.0}, {1: 2.0, 2: 3.0}) is None
    same = significance.compare({0: 1.0, 1: 2.0}, {0: 1.0, 1: 2.0})
    assert (same.delta, same.p) == (0.0, 1.0) and math.isnan(same.detectable)
