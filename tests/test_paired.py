"""Paired comparisons across seeds (analysis/paired.py) against the textbook formulas, computed here."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from by_hand import holm_by_hand, paired_by_hand
from mila_bench.analysis.paired import COLUMNS, holm, paired_tests

VALUES = {  # (depth, activation) → top-1 per seed 0..3; swish lacks seed 3 at depth 4
    (2, "relu"): [0.80, 0.82, 0.79, 0.81],
    (2, "swish"): [0.83, 0.83, 0.80, 0.84],
    (2, "mila"): [0.84, 0.82, 0.83, 0.85],
    (4, "relu"): [0.60, 0.70, 0.65, 0.50],
    (4, "swish"): [0.72, 0.71, 0.69, None],
    (4, "mila"): [0.61, 0.71, 0.66, 0.51],  # relu + 0.01 on every seed: a constant difference
}


def runs() -> pd.DataFrame:
    """One row per run; swish's seeds come in reverse order, so pairing by position would be wrong."""
    rows = []
    for (depth, act), values in VALUES.items():
        seeds = list(enumerate(values))
        for seed, v in reversed(seeds) if act == "swish" else seeds:
            if v is not None:
                rows.append({"activation": act, "depth": depth, "seed": seed, "top1": v})
    return pd.DataFrame(rows)


def by_hand(a: list[float | None], b: list[float | None]) -> dict[str, float]:
    """Differences matched by seed (a seed missing on either side left out), then by_hand.paired_by_hand."""
    both = [(x, y) for x, y in zip(a, b) if x is not None and y is not None]
    mean, low, high, p = paired_by_hand([x for x, _ in both], [y for _, y in both])
    sd = float(np.std([x - y for x, y in both], ddof=1))
    return {"n": len(both), "mean_diff": mean, "std_diff": sd, "ci_low": low, "ci_high": high, "p": p}


def test_pairs_match_the_paired_t_test_by_hand() -> None:
    table = paired_tests(runs(), ["depth"])
    assert list(table.columns) == ["depth", *COLUMNS]
    pairs = [("relu", "swish"), ("relu", "mila"), ("swish", "mila")]
    # Activations keep the order they first appear in; groups keep theirs.
    assert [tuple(r) for r in table[["depth", "a", "b"]].to_numpy()] == [(d, a, b) for d in (2, 4) for a, b in pairs]
    finite = []
    for row in table.itertuples():
        expected = by_hand(VALUES[(row.depth, row.a)], VALUES[(row.depth, row.b)])
        for key, value in expected.items():
            got = getattr(row, key)
            assert (math.isnan(got) and math.isnan(value)) or got == pytest.approx(value, rel=1e-9, abs=1e-12), (row, key)
        if not math.isnan(expected["p"]):
            finite.append((row.Index, expected["p"]))
    constant = table[(table["depth"] == 4) & (table["a"] == "relu") & (table["b"] == "mila")].iloc[0]
    assert constant["n"] == 4 and constant["mean_diff"] == pytest.approx(-0.01) and math.isnan(constant["p"])
    assert table[(table["depth"] == 4) & (table["b"] == "swish")]["n"].item() == 3  # only the seeds both have
    # Holm over every finite p of the table; NaN rows stay NaN.
    expected_holm = holm_by_hand([p for _, p in finite])
    np.testing.assert_allclose(table.loc[[i for i, _ in finite], "p_holm"], expected_holm, rtol=1e-12)
    assert table["p_holm"].isna().sum() == table["p"].isna().sum() == 1


def test_single_seed_and_no_groups() -> None:
    one = pd.DataFrame({"activation": ["relu", "swish"], "seed": [0, 0], "roughness": [2.0, 0.5]})
    [row] = paired_tests(one, [], value="roughness").to_dict("records")
    assert (row["a"], row["b"], row["n"], row["mean_diff"]) == ("relu", "swish", 1, 1.5)
    assert math.isnan(row["std_diff"]) and math.isnan(row["p"]) and math.isnan(row["p_holm"])


def test_holm_of_known_values() -> None:
    got = holm([0.01, 0.04, math.nan, 0.03, 0.5])
    np.testing.assert_allclose(got[[0, 1, 3, 4]], [0.04, 0.09, 0.09, 0.5])  # 4×0.01, max(3×0.03, ·), max(2×0.04, ·), 0.5
    assert math.isnan(got[2])
