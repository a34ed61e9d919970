"""Across-task ranking: autorank's ranks, Friedman p and Nemenyi CD against the same statistics
computed here from their definitions on the same blocks (scipy's documented functions)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mila_bench.errors import UsageError
from mila_bench.report.ranking import ALPHA, blocks, limits, rank

ACTIVATIONS = ("mila", "mish", "relu", "gelu")


def results(n_tasks: int = 3, n_seeds: int = 4, shift: dict[str, float] | None = None, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    shift = shift or {"mila": 0.6, "mish": 0.5, "relu": 0.0, "gelu": 0.3}
    rows = []
    for t in range(n_tasks):
        base = rng.normal(0.8, 0.05)
        for s in range(n_seeds):
            noise = rng.normal(0, 0.01)
            for a in ACTIVATIONS:
                rows.append({"task": f"task{t}", "seed": s, "activation": a,
                             "value": base + noise + 0.02 * shift[a] + rng.normal(0, 0.01)})
    return pd.DataFrame(rows)


def test_ranks_friedman_and_cd_equal_their_definitions(tmp_path: Path) -> None:
    data = results()
    ranking = rank(data, higher_is_better=True, figure=tmp_path / "cd.png")
    matrix = data.pivot_table(index=["task", "seed"], columns="activation", values="value")
    # Ranks within each block, 1 = highest accuracy, ties averaged.
    ranks = np.vstack([stats.rankdata(-row) for row in matrix.to_numpy()])
    expected = dict(zip(matrix.columns, ranks.mean(axis=0)))
    assert ranking.mean_ranks == pytest.approx(expected)
    assert list(ranking.mean_ranks) == sorted(expected, key=expected.get)  # best first
    assert ranking.friedman_p == pytest.approx(stats.friedmanchisquare(*matrix.to_numpy().T).pvalue)
    k, n = matrix.shape[1], matrix.shape[0]
    q = stats.studentized_range.ppf(1 - ALPHA, k, np.inf) / math.sqrt(2)
    assert ranking.critical_difference == pytest.approx(q * math.sqrt(k * (k + 1) / (6 * n)), rel=1e-3)
    assert (ranking.blocks, ranking.tasks, ranking.seeds) == (12, 3, 4)
    a, b = list(ranking.mean_ranks)[0], list(ranking.mean_ranks)[-1]
    assert ranking.differs(a, b) == (abs(expected[a] - expected[b]) > ranking.critical_difference)
    assert (tmp_path / "cd.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_lower_is_better_reverses_the_ranks() -> None:
    data = results()
    up, down = rank(data, True), rank(data, False)
    k = len(ACTIVATIONS)
    for name, r in up.mean_ranks.items():
        assert down.mean_ranks[name] == pytest.approx(k + 1 - r)


def test_blocks_keep_only_seeds_where_every_activation_ran() -> None:
    data = results(n_tasks=2, n_seeds=5)
    missing = data[~((data.task == "task0") & (data.seed == 3) & (data.activation == "relu"))]
    assert len(blocks(missing)) == 9
    with pytest.raises(UsageError, match="at least 5 .* found 3"):
        rank(results(n_tasks=1, n_seeds=3))
    with pytest.raises(UsageError, match="at least 3 activations .* found 2"):
        rank(data[data.activation.isin(["mila", "relu"])])


def test_limits_say_what_the_blocks_allow() -> None:
    strong = rank(results(n_tasks=4, n_seeds=5, shift={"mila": 3, "mish": 2, "relu": 0, "gelu": 1}))
    weak = rank(results(n_tasks=2, n_seeds=3, shift={a: 0.0 for a in ACTIVATIONS}, seed=1))
    assert strong.friedman_p < ALPHA and "the mean ranks differ" in limits(strong)
    assert weak.friedman_p >= ALPHA and "no evidence" in limits(weak)
    assert "6 blocks (2 tasks × 3 seeds" in limits(weak)
    assert weak.critical_difference > strong.critical_difference  # fewer blocks, wider CD
