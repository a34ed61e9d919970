"""Mila over the (x, β) plane: filled contours of f and ∂f/∂x, and where its global minimum sits.

For every β the global minimum is found numerically (a dense grid over the whole negative
half-line to find the basin, then scipy's bounded scalar minimiser to polish it), with the
curvature f″ there: the "concavity of the global minimum" as numbers, not a picture only.
"""

from __future__ import annotations

from pathlib import Path

from mila_bench.analysis.choices import ActivationChoice
from mila_bench.analysis.functions import derivatives
from mila_bench.analysis.style import DPI, pyplot, save_figure, save_table

TABLE_ROWS = 13  # rows of the minima table printed to the terminal


def mila(beta: float) -> ActivationChoice:
    return ActivationChoice("mila", {"beta": float(beta)})


def global_minimum(beta: float) -> tuple[float, float, float]:
    """(x*, f(x*), f″(x*)) of Mila at ``beta``.

    For x > 0 Mila is positive, and it tends to 0 from below as x → -∞, so the global
    minimum lies on a bounded stretch of the negative half-line: searching down to
    -(40 + |β|) covers it for any β.
    """
    import torch
    from scipy.optimize import minimize_scalar

    choice = mila(beta)
    act = choice.module()
    grid = torch.linspace(-(40.0 + abs(beta)), 0.0, 8001, dtype=torch.float64)
    with torch.no_grad():
        values = act(grid)
    i = int(values.argmin())
    low, high = float(grid[max(i - 1, 0)]), float(grid[min(i + 1, len(grid) - 1)])

    def f(x: float) -> float:
        with torch.no_grad():
            return float(act(torch.tensor(x, dtype=torch.float64)))

    found = minimize_scalar(f, bounds=(low, high), method="bounded", options={"xatol": 1e-10})
    x_min = float(found.x)
    value, _, curvature, _ = derivatives(choice, torch.tensor([x_min], dtype=torch.float64))
    return x_min, float(value[0]), float(curvature[0])


def contour_tables(x_range: tuple[float, float], beta_range: tuple[float, float], x_points: int, beta_points: int):
    """(grid, minima): long grid table (x, beta, f, df_dx) and one minimum row per grid β."""
    import numpy as np
    import pandas as pd
    import torch

    xs = torch.linspace(*x_range, x_points, dtype=torch.float64)
    betas = np.linspace(*beta_range, beta_points)
    frames, minima = [], []
    for beta in betas:
        f, d1, *_ = derivatives(mila(beta), xs)
        frames.append(pd.DataFrame({"beta": beta, "x": xs.numpy(), "f": f.numpy(), "df_dx": d1.numpy()}))
        x_min, f_min, curvature = global_minimum(float(beta))
        minima.append({"beta": beta, "x_min": x_min, "f_min": f_min, "d2f_at_min": curvature})
    return pd.concat(frames, ignore_index=True), pd.DataFrame(minima)


def summary_rows(minima):
    """About ``TABLE_ROWS`` evenly spaced rows of the minima table, both ends included."""
    import numpy as np

    index = np.unique(np.linspace(0, len(minima) - 1, min(TABLE_ROWS, len(minima))).round().astype(int))
    return minima.iloc[index]


def plot_contours(grid, minima, path: Path, dpi: int = DPI) -> Path:
    """Two filled-contour panels over (x, β), the minimum's path drawn on both."""
    plt = pyplot()
    xs, betas = sorted(grid["x"].unique()), sorted(grid["beta"].unique())
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
    for ax, (column, title) in zip(axes, (("f", "Mila f(x; β)"), ("df_dx", "∂f/∂x"))):
        values = grid.pivot(index="beta", columns="x", values=column).loc[betas, xs].to_numpy()
        filled = ax.contourf(xs, betas, values, levels=30, cmap="viridis")
        ax.contour(xs, betas, values, levels=[0.0], colors="white", linewidths=0.8)
        fig.colorbar(filled, ax=ax, label=title)
        visible = minima[(minima["x_min"] >= min(xs)) & (minima["x_min"] <= max(xs))]
        ax.plot(visible["x_min"], visible["beta"], "--", color="#d62728", linewidth=1.6, label="global minimum x*(β)")
        ax.set(title=title, xlabel="x", ylabel="β")
    axes[0].legend(loc="lower right", fontsize=8)
    fig.suptitle("Mila over (x, β): white = zero level, red dashed = global minimum")
    fig.tight_layout()
    return save_figure(fig, path, dpi)


def run(
    x_range: tuple[float, float],
    beta_range: tuple[float, float],
    x_points: int,
    beta_points: int,
    out: Path,
    dpi: int = DPI,
) -> tuple[list[Path], object]:
    """Write ``contour.png``, ``contour.csv`` and ``contour_minima.csv``; return them and the summary rows."""
    grid, minima = contour_tables(x_range, beta_range, x_points, beta_points)
    paths = [
        plot_contours(grid, minima, out / "contour.png", dpi),
        save_table(grid, out / "contour.csv"),
        save_table(minima, out / "contour_minima.csv"),
    ]
    return paths, summary_rows(minima)
