"""Statistics written out by hand, for tests to check the library-backed code against."""

from __future__ import annotations

import math


def holm_by_hand(p: list[float]) -> list[float]:
    """Holm: the k-th smallest of m p-values times (m - k + 1), kept non-decreasing, capped at 1."""
    order = sorted(range(len(p)), key=lambda i: p[i])
    adjusted, running = [0.0] * len(p), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p) - rank) * p[i]))
        adjusted[i] = running
    return adjusted


def paired_by_hand(a: list[float], b: list[float], confidence: float = 0.95) -> tuple[float, float, float, float]:
    """Paired t-test written out: mean difference a − b, its CI on n − 1 df, two-sided p (nan when the differences do not vary)."""
    import numpy as np
    from scipy import stats

    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    n, mean, sd = len(d), d.mean(), d.std(ddof=1)
    if sd == 0:
        return mean, math.nan, math.nan, math.nan
    half = stats.t.ppf(0.5 + confidence / 2, n - 1) * sd / math.sqrt(n)
    return mean, mean - half, mean + half, 2 * stats.t.sf(abs(mean / (sd / math.sqrt(n))), n - 1)


def welch_by_hand(a: list[float], b: list[float], confidence: float = 0.95) -> tuple[float, float, float, float]:
    """Welch's t-test written out: mean difference a − b, its CI on the Welch–Satterthwaite df, two-sided p."""
    import numpy as np
    from scipy import stats

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    delta, se = a.mean() - b.mean(), math.sqrt(va + vb)
    half = stats.t.ppf(0.5 + confidence / 2, df) * se
    return delta, delta - half, delta + half, 2 * stats.t.sf(abs(delta / se), df)


def two_sided_t_power(noncentrality: float, df: float, alpha: float = 0.05) -> float:
    """Power of a two-sided t-test: with T = (Z + nc) / sqrt(V/df), V ~ χ²(df), the chance that
    |T| passes the critical t, integrated over V (given V, each tail is a normal probability)."""
    from scipy import stats
    from scipy.integrate import quad

    crit = stats.t.ppf(1 - alpha / 2, df)

    def given(v: float) -> float:
        scale = crit * math.sqrt(v / df)
        return (stats.norm.cdf(noncentrality - scale) + stats.norm.cdf(-noncentrality - scale)) * stats.chi2.pdf(v, df)

    return quad(given, 0, math.inf, limit=200)[0]


def detectable_paired_by_hand(n: int, sd_difference: float, power: float = 0.8) -> float:
    """Smallest mean difference a paired t-test on n pairs finds with ``power``: nc = effect·√n, df = n − 1."""
    from scipy.optimize import brentq

    effect = brentq(lambda e: two_sided_t_power(e * math.sqrt(n), n - 1) - power, 1e-6, 100)
    return effect * sd_difference


def detectable_independent_by_hand(n1: int, n2: int, sd_pooled: float, power: float = 0.8) -> float:
    """Smallest difference of means a two-sample t-test finds with ``power``:
    nc = effect·√(n1·n2 / (n1 + n2)), df = n1 + n2 − 2, in units of the pooled sd."""
    from scipy.optimize import brentq

    scale = math.sqrt(n1 * n2 / (n1 + n2))
    effect = brentq(lambda e: two_sided_t_power(e * scale, n1 + n2 - 2) - power, 1e-6, 100)
    return effect * sd_pooled


def pooled_sd(a: list[float], b: list[float]) -> float:
    """√(((n1 − 1)s1² + (n2 − 1)s2²) / (n1 + n2 − 2))."""
    import statistics

    return math.sqrt(((len(a) - 1) * statistics.variance(a) + (len(b) - 1) * statistics.variance(b)) / (len(a) + len(b) - 2))
