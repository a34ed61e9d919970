"""The accuracy curves of the training studies (noise, depth): per-seed runs → mean ± std → lines."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mila_bench.analysis.choices import ActivationChoice
from mila_bench.analysis.style import colour, pyplot, save_figure


def summarise(runs, keys: list[str]):
    """Mean, sample std (0 for a single seed) and seed count of ``top1`` per ``keys`` group, in run order."""
    table = runs.groupby(keys, sort=False)["top1"].agg(top1_mean="mean", top1_std="std", seeds="count").reset_index()
    table["top1_std"] = table["top1_std"].fillna(0.0)
    return table


def plot_lines(
    summary,
    choices: Sequence[ActivationChoice],
    x: str,
    xlabel: str,
    title: str,
    path: Path,
    dpi: int,
    xticks: Sequence[float] | None = None,
) -> Path:
    """One line per activation (mean top-1 in %), with ±1 sample std error bars when there are
    several seeds; the y label states n (or the range of n when groups differ)."""
    fig, ax = pyplot().subplots(figsize=(7, 4.4))
    several = bool((summary["seeds"] > 1).any())
    for choice in choices:
        rows = summary[summary["activation"] == choice.label]
        mean, std = 100 * rows["top1_mean"], 100 * rows["top1_std"]
        ax.errorbar(
            rows[x], mean, yerr=std if several else None, fmt="o-", color=colour(choice), label=choice.label,
            markersize=4, capsize=3, elinewidth=1,
        )  # fmt: skip
    if xticks is not None:
        ax.set_xticks(list(xticks))
    low, high = int(summary["seeds"].min()), int(summary["seeds"].max())
    n = f"n = {low}" if low == high else f"n = {low}-{high}"
    ylabel = "test top-1 (%)" + (f", mean ± std, {n} seeds" if several else f", {n} seed")
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return save_figure(fig, path, dpi)
