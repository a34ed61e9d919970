"""Paired comparisons of activations across seeds, for the studies' claims.

In every study, runs with the same seed share what the seed draws: initial weights (for
networks of the same shape), batch order, the noise sample, the random network of the
landscape. So two activations are compared seed by seed (the paired t-test,
``scipy.stats.ttest_rel``) rather than as two independent samples, which would throw that
pairing away. One row per (group, pair of activations): n, the mean difference with its
95 % confidence interval, and p; ``p_holm`` corrects p for the number of comparisons in the
whole table (Holm's step-down, over every row) so a claim picked from many tests is not one
that chance alone would give.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations

#: The columns of a pairs table after its group keys.
COLUMNS = ("a", "b", "n", "mean_diff", "std_diff", "ci_low", "ci_high", "p", "p_holm")


def paired_tests(runs, by: Sequence[str], value: str = "top1", pair_on: str = "seed"):
    """For each ``by`` group (or the whole table when ``by`` is empty) and each pair (a, b) of activations in order of appearance, the
    per-``pair_on`` differences ``value(a) - value(b)`` and their paired t-test.

    Groups where a pair shares fewer than 2 seeds, or whose differences are all equal (e.g.
    two activations stuck at chance), get NaN for what cannot be computed.
    """
    import numpy as np
    import pandas as pd
    from scipy import stats

    rows = []
    groups = runs.groupby(list(by), sort=False) if by else [((), runs)]
    for key, group in groups:
        key = key if isinstance(key, tuple) else (key,)
        table = group.pivot_table(index=pair_on, columns="activation", values=value, aggfunc="first")
        names = list(dict.fromkeys(group["activation"]))
        for a, b in combinations(names, 2):
            both = table[[a, b]].dropna()
            diff = (both[a] - both[b]).to_numpy(dtype=float)
            row = dict(zip(by, key), a=a, b=b, n=len(diff), mean_diff=float(diff.mean()) if len(diff) else np.nan)
            row.update(std_diff=np.nan, ci_low=np.nan, ci_high=np.nan, p=np.nan)
            if len(diff) >= 2:
                row["std_diff"] = float(diff.std(ddof=1))
                if row["std_diff"] > 0:
                    test = stats.ttest_rel(both[a], both[b])
                    ci = test.confidence_interval(0.95)
                    row.update(ci_low=float(ci.low), ci_high=float(ci.high), p=float(test.pvalue))
            rows.append(row)
    result = pd.DataFrame(rows, columns=[*by, *COLUMNS[:-1]])
    result["p_holm"] = holm(result["p"].to_numpy())
    return result


def holm(p):
    """Holm's step-down adjustment (``mila_bench.significance.holm``) of the finite p-values in ``p``; NaN stays NaN."""
    import numpy as np

    from mila_bench.significance import holm as adjust

    p = np.asarray(p, dtype=float)
    adjusted = np.full_like(p, np.nan)
    finite = np.isfinite(p)
    if finite.any():
        adjusted[finite] = adjust(list(p[finite]))
    return adjusted
