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
    """One line per activation (mean top-1 in %), with a ±1 std band when there are several seeds."""
    fig, ax = pyplot().subplots(figsize=(7, 4.4))
    for choice in choices:
        rows = summary[summary["activation"] == choice.label]
        mean, std = 100 * rows["top1_mean"], 100 * rows["top1_std"]
        ax.plot(rows[x], mean, "o-", color=colour(choice), label=choice.label, markersize=4)
        if (rows["seeds"] > 1).any():
            ax.fill_between(rows[x], mean - std, mean + std, color=colour(choice), alpha=0.18, linewidth=0)
    if xticks is not None:
        ax.set_xticks(list(xticks))
    seeds = int(summary["seeds"].max())
    ylabel = "test top-1 (%)" + (f", mean ± std over {seeds} seeds" if seeds > 1 else "")
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return save_figure(fig, path, dpi)
