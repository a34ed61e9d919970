"""The report's figures (matplotlib, PNG): top-1 against β, and per-epoch curves over seeds."""

from __future__ import annotations

import math
from pathlib import Path

from mila_bench import significance as st
from mila_bench.report.configurations import Configuration, others


def plot_beta(configs: list[Configuration], title: str, path: Path) -> Path | None:
    """Top-1 against β (mean, ±std bars) for every series that sweeps β; None when none does."""
    series: dict[tuple, list[Configuration]] = {}
    flat: list[Configuration] = []
    for config in configs:
        if config.beta is None:
            flat.append(config)
        elif not config.learnable:
            rest = tuple(item for item in config.key if item[0] != "activation.beta")
            series.setdefault(rest, []).append(config)
    swept = [sorted(group, key=lambda c: c.beta) for group in series.values() if len(group) > 1]
    if not swept:
        return None
    fig, ax = _figure(1)
    for group in sorted(swept, key=lambda g: g[0].label()):
        betas = [c.beta for c in group]
        means = [100 * st.mean(c.values("top1")) for c in group]
        stds = [100 * st.std(c.values("top1")) for c in group]
        ax.errorbar(betas, means, yerr=[0 if math.isnan(s) else s for s in stds], marker="o", capsize=3,
                    label=group[0].activation() + others(group[0], configs))  # fmt: skip
    for i, config in enumerate(sorted(flat, key=lambda c: c.label()), start=len(swept)):
        label = config.activation() + others(config, configs)
        ax.axhline(100 * st.mean(config.values("top1")), linestyle="--", linewidth=1, color=f"C{i % 10}", label=label)
    ax.set(xlabel="β", ylabel="test top-1 (%)", title=f"{title}: top-1 vs β (mean ± std over seeds)")
    ax.legend(fontsize="small")
    return _save(fig, path)


def plot_curves(configs: list[Configuration], title: str, path: Path) -> Path | None:
    """Per-epoch test top-1 and loss per configuration: mean over seeds with a ±std band."""
    import pandas as pd

    def usable(run) -> bool:
        return run.metrics is not None and {"epoch", "top1", "test_loss"} <= set(run.metrics.columns)

    drawn = [c for c in configs if any(usable(r) for r in c.replicates.values())]
    if not drawn:
        return None
    fig, (top, loss) = _figure(2)
    for i, config in enumerate(drawn):
        frame = pd.concat([r.metrics for r in config.replicates.values() if usable(r)])
        stats = frame.groupby("epoch")[["top1", "test_loss"]].agg(["mean", "std"]).fillna(0.0)
        label = config.label() + others(config, configs)
        for ax, column, scale in ((top, "top1", 100.0), (loss, "test_loss", 1.0)):
            mean, std = scale * stats[(column, "mean")], scale * stats[(column, "std")]
            ax.plot(stats.index, mean, marker=".", color=f"C{i % 10}", label=label)
            ax.fill_between(stats.index, mean - std, mean + std, color=f"C{i % 10}", alpha=0.2)
    from matplotlib.ticker import MaxNLocator

    for ax in (top, loss):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    top.set(xlabel="epoch", ylabel="test top-1 (%)", title=f"{title}: test top-1")
    loss.set(xlabel="epoch", ylabel="test loss", title="test loss (mean ± std over seeds)")
    top.legend(fontsize="x-small")
    return _save(fig, path)


def _figure(panels: int):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4 * panels, 4.2), layout="constrained")
    axes = fig.subplots(1, panels)
    return fig, axes


def _save(fig, path: Path) -> Path:
    """Write the PNG without metadata that changes between runs, so a rebuild gives the same bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, metadata={"Software": None})
    return path
