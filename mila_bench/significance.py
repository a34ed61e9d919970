"""Statistics for comparing configurations over seeds (scipy and statsmodels do the maths).

Seeds are the replicates: runs of one configuration with the same seed share their initial
weights and batch order, so repeating a (configuration, seed) adds no information and counts
once. Two configurations run with the same seeds are compared *paired* (the seed's shared
randomness cancels out, which makes real differences easier to see); without two shared
seeds they are compared with Welch's t-test. Within a table the p-values are corrected for
multiple comparisons (Holm), and each comparison states the smallest difference its n and
spread could detect with 80 % power, so "not significant" can be read as "too few seeds to
tell" where that is what it means.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

ALPHA = 0.05
POWER = 0.8
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Comparison:
    """A configuration against its baseline on one metric (differences in the metric's units)."""

    test: str  # "paired" or "Welch"
    n: int  # shared seeds when paired, else the smaller group
    delta: float  # mean difference, configuration − baseline
    ci_low: float
    ci_high: float
    p: float
    detectable: float  # smallest |difference| found with POWER at ALPHA (nan when it cannot be computed)


def mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values) if values else math.nan


def std(values: Sequence[float]) -> float:
    """Sample standard deviation (n − 1); nan below two values."""
    import statistics

    return statistics.stdev(values) if len(values) > 1 else math.nan


def compare(ours: Mapping[int, float], baseline: Mapping[int, float]) -> Comparison | None:
    """Compare per-seed values; paired on the shared seeds when there are at least two, else Welch.

    None when neither test is possible (fewer than two values on a side).
    """
    from scipy import stats

    shared = sorted(set(ours) & set(baseline))
    if len(shared) >= 2:
        a, b = [ours[s] for s in shared], [baseline[s] for s in shared]
        if all(x == y for x, y in zip(a, b)):
            return Comparison("paired", len(shared), 0.0, 0.0, 0.0, 1.0, math.nan)
        result = stats.ttest_rel(a, b)
        ci = result.confidence_interval(CONFIDENCE)
        differences = [x - y for x, y in zip(a, b)]
        detectable = detectable_paired(len(shared), std(differences))
        return Comparison("paired", len(shared), mean(differences), ci.low, ci.high, float(result.pvalue), detectable)
    a, b = list(ours.values()), list(baseline.values())
    if len(a) < 2 or len(b) < 2:
        return None
    result = stats.ttest_ind(a, b, equal_var=False)
    ci = result.confidence_interval(CONFIDENCE)
    pooled = math.sqrt(((len(a) - 1) * std(a) ** 2 + (len(b) - 1) * std(b) ** 2) / (len(a) + len(b) - 2))
    detectable = detectable_independent(len(a), len(b), pooled)
    return Comparison("Welch", min(len(a), len(b)), mean(a) - mean(b), ci.low, ci.high, float(result.pvalue), detectable)


def detectable_paired(n: int, sd_difference: float) -> float:
    """Smallest mean paired difference a two-sided paired t-test on ``n`` pairs detects with POWER."""
    from statsmodels.stats.power import TTestPower

    return _solve(lambda: TTestPower().solve_power(nobs=n, alpha=ALPHA, power=POWER), sd_difference)


def detectable_independent(n1: int, n2: int, sd_pooled: float) -> float:
    """Smallest difference of means a two-sided two-sample t-test detects with POWER."""
    from statsmodels.stats.power import TTestIndPower

    return _solve(lambda: TTestIndPower().solve_power(nobs1=n1, ratio=n2 / n1, alpha=ALPHA, power=POWER), sd_pooled)


def _solve(effect_size, sd: float) -> float:
    if not math.isfinite(sd) or sd <= 0:
        return math.nan
    try:
        effect = float(effect_size())
    except (ValueError, RuntimeError, ArithmeticError):
        return math.nan
    return effect * sd if math.isfinite(effect) else math.nan


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values (family-wise error rate over one table's comparisons)."""
    if not p_values:
        return []
    from statsmodels.stats.multitest import multipletests

    return [float(p) for p in multipletests(list(p_values), alpha=ALPHA, method="holm")[1]]
