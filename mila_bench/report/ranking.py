"""Activations ranked across tasks: mean ranks, Friedman's test, Nemenyi's post-hoc, a CD diagram.

All of it comes from autorank (Herbold, 2020; the procedure Demšar (2006) recommends),
forced to its non-parametric path so the test does not change with the data: each block is one
(task, seed) pair where the seeds pair; within a block the activations are ranked (1 = best);
Friedman's test asks whether the mean ranks differ at all, and Nemenyi's critical difference (CD)
says which pairs differ with the family-wise error held at α. With few blocks the CD is wide:
:func:`limits` says what such a ranking can and cannot conclude.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mila_bench.errors import UsageError

if TYPE_CHECKING:
    import pandas as pd

ALPHA = 0.05
#: autorank needs at least this many blocks (its tests are not defined below it).
MIN_BLOCKS = 5


@dataclass(frozen=True)
class Ranking:
    """The across-task ranking of one metric."""

    mean_ranks: dict[str, float]  # activation → mean rank over the blocks, best first (1 = best)
    friedman_p: float
    critical_difference: float  # Nemenyi's CD at ALPHA: mean ranks further apart than this differ
    blocks: int  # (task, seed) pairs
    tasks: int
    seeds: int
    figure: Path | None = None

    def differs(self, a: str, b: str) -> bool:
        """Whether Nemenyi's test tells ``a`` and ``b`` apart (family-wise α)."""
        return abs(self.mean_ranks[a] - self.mean_ranks[b]) > self.critical_difference


def blocks(results: pd.DataFrame, value: str = "value") -> pd.DataFrame:
    """(task, seed) × activation matrix of ``value`` from long rows (task, seed, activation, value),
    keeping only the blocks in which every activation has a value (the seeds pair there)."""
    wide = results.pivot_table(index=["task", "seed"], columns="activation", values=value, aggfunc="last")
    return wide.dropna(how="any")


def rank(results: pd.DataFrame, higher_is_better: bool = True, figure: Path | None = None) -> Ranking:
    """Rank the activations in ``results`` (columns task, seed, activation, value) across tasks.

    ``figure``: where to write the critical-difference diagram (PNG).
    """
    import contextlib
    import io
    import warnings

    import autorank

    matrix = blocks(results)
    if matrix.shape[1] < 3:  # Friedman's test compares three or more; two are a paired comparison
        raise UsageError(f"ranking needs at least 3 activations with results in the same blocks; found {matrix.shape[1]}")
    if len(matrix) < MIN_BLOCKS:
        raise UsageError(
            f"ranking needs at least {MIN_BLOCKS} (task, seed) blocks in which every activation ran; found {len(matrix)}"
        )
    # autorank prints (and warns) that the normality tests are skipped: we ask it to skip them.
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        result = autorank.autorank(
            matrix.reset_index(drop=True), alpha=ALPHA, verbose=False,
            order="descending" if higher_is_better else "ascending", force_mode="nonparametric",
        )  # fmt: skip
    if figure is not None:
        with contextlib.redirect_stdout(io.StringIO()):
            _plot(result, figure)
    means = result.rankdf["meanrank"].sort_values()
    return Ranking(
        mean_ranks={str(k): float(v) for k, v in means.items()},
        friedman_p=float(result.pvalue),
        critical_difference=float(result.cd),
        blocks=len(matrix),
        tasks=matrix.index.get_level_values("task").nunique(),
        seeds=matrix.index.get_level_values("seed").nunique(),
        figure=figure,
    )


def _plot(result: object, figure: Path) -> None:
    import autorank
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    from mila_bench.atomic import atomic_write

    figure.parent.mkdir(parents=True, exist_ok=True)
    ax = autorank.plot_stats(result, allow_insignificant=True)
    atomic_write(figure, lambda f: ax.figure.savefig(f, format="png", dpi=100, bbox_inches="tight"))
    plt.close(ax.figure)


def limits(ranking: Ranking) -> str:
    """What a ranking resting on this many blocks can and cannot conclude, in one paragraph."""
    k = len(ranking.mean_ranks)
    verdict = (
        f"Friedman p = {ranking.friedman_p:.3g}: the mean ranks differ (α = {ALPHA:g})"
        if ranking.friedman_p < ALPHA
        else f"Friedman p = {ranking.friedman_p:.3g}: no evidence that the mean ranks differ (α = {ALPHA:g})"
    )
    return (
        f"{k} activations ranked in {ranking.blocks} blocks ({ranking.tasks} tasks × {ranking.seeds} seeds; "
        f"a block is one task and seed, 1 = best). {verdict}. Nemenyi's critical difference is "
        f"{ranking.critical_difference:.2f} ranks: only pairs further apart than that differ with the "
        "family-wise error held at α; pairs closer are not shown to be equal. Seeds of one task are not "
        f"independent tasks, so the ranking generalises to these {ranking.tasks} tasks, not to tasks in general."
    )
