"""f, f′ and f″ of any registered activation, and their three-panel figure.

Derivatives come from autograd on the registry's own function, so a new activation needs
no hand-written derivative, and the figure shows exactly what training differentiates.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mila_bench.analysis.choices import ActivationChoice
from mila_bench.analysis.style import DPI, colour, pyplot, save_figure, save_table

DEFAULT_BETAS = (-0.25, 0.0, 0.5, 1.0, 1.5)
FINITE_DIFFERENCE_STEP = 1e-5


def derivatives(choice: ActivationChoice, x):
    """(f, f′, f″, how f″ was computed) for ``choice`` at the float64 tensor ``x``, detached.

    f′ is always autograd's. f″ is autograd's where the activation's backward is itself
    differentiable; a fused kernel whose backward is not (``once_differentiable``, its f′
    comes back detached from x) gets a central difference of its autograd f′ instead,
    accurate to ~1e-9 in float64.
    """
    import torch

    module = choice.module()

    def first(points):
        points = points.detach().clone().requires_grad_(True)
        value = module(points)
        (grad,) = torch.autograd.grad(value.sum(), points, create_graph=True)
        return points, value, grad

    points, f, d1 = first(x)
    if d1.requires_grad:
        try:
            d2 = torch.autograd.grad(d1.sum(), points, allow_unused=True)[0]
            # None: f′ has no path back to x (ReLU's piecewise-constant f′), so f″ = 0
            return f.detach(), d1.detach(), (torch.zeros_like(x) if d2 is None else d2.detach()), "autograd"
        except RuntimeError:
            pass
    h = FINITE_DIFFERENCE_STEP
    d2 = (first(x + h)[2] - first(x - h)[2]) / (2 * h)
    return f.detach(), d1.detach(), d2.detach(), "central difference of autograd f′"


def function_table(choices: Sequence[ActivationChoice], low: float, high: float, points: int):
    """Long table: activation, x, f, df_dx, d2f_dx2 (and how f″ was computed) for every choice on one shared x grid."""
    import pandas as pd
    import torch

    x = torch.linspace(low, high, points, dtype=torch.float64)
    frames = []
    for choice in choices:
        f, d1, d2, method = derivatives(choice, x)
        frames.append(
            pd.DataFrame(
                {"activation": choice.label, "x": x.numpy(), "f": f.numpy(), "df_dx": d1.numpy(),
                 "d2f_dx2": d2.numpy(), "d2f_dx2_by": method}
            )
        )
    return pd.concat(frames, ignore_index=True)


def plot_functions(choices: Sequence[ActivationChoice], table, path: Path, dpi: int = DPI) -> Path:
    """Three side-by-side panels (f, f′, f″), one line per activation, shared x-range."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(13, 4), sharex=True)
    panels = (("f", "f(x)"), ("df_dx", "f′(x)"), ("d2f_dx2", "f″(x)"))
    for ax, (column, title) in zip(axes, panels):
        for choice in choices:
            rows = table[table["activation"] == choice.label]
            ax.plot(rows["x"], rows[column], color=colour(choice), label=choice.label, linewidth=1.6)
        ax.axhline(0, color="0.6", linewidth=0.6)
        ax.axvline(0, color="0.6", linewidth=0.6)
        ax.set(title=title, xlabel="x", ylabel=title)
        ax.grid(alpha=0.25)
    axes[0].legend(fontsize=8)
    fig.suptitle("Activations and their first two derivatives")
    fig.tight_layout()
    return save_figure(fig, path, dpi)


def run(
    choices: Sequence[ActivationChoice], low: float, high: float, points: int, out: Path, dpi: int = DPI
) -> list[Path]:
    """Write ``function.png`` and ``function.csv`` into ``out``."""
    table = function_table(choices, low, high, points)
    return [plot_functions(choices, table, out / "function.png", dpi), save_table(table, out / "function.csv")]
