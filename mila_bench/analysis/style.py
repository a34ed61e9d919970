"""What every figure shares: one colour per activation, the output folder, PNG + CSV writing.

Colours depend only on the activation (and β for Mila), never on the order it was asked
in, so relu is the same blue in every figure. Files are written atomically.
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import TYPE_CHECKING

from mila_bench.analysis.choices import ActivationChoice
from mila_bench.errors import UsageError
from mila_bench.atomic import atomic_write

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

DEFAULT_OUT = Path("results") / "figures"
DPI = 90
FIXED_COLOURS = {"relu": "#1f77b4", "swish": "#ff7f0e", "mish": "#2ca02c", "mila": "#d62728"}
SPARE_COLOURS = ("#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
MILA_DEFAULT_BETA = -0.25


def colour(choice: ActivationChoice) -> str | tuple[float, ...]:
    """The colour of ``choice`` in every figure.

    Mila at the demo's β = -0.25 keeps its red; other β values take a shade of the dark
    half of ``plasma`` (purple for β ≤ -1 to pink for β ≥ 2), so a β sweep reads as an
    ordered family and never takes another activation's colour.
    """
    if choice.name == "mila" and choice.params.get("beta", MILA_DEFAULT_BETA) != MILA_DEFAULT_BETA:
        from matplotlib import colormaps

        position = min(max((choice.params["beta"] + 1.0) / 3.0, 0.0), 1.0)
        return colormaps["plasma"](0.05 + 0.5 * position)
    if choice.name in FIXED_COLOURS:
        return FIXED_COLOURS[choice.name]
    return SPARE_COLOURS[zlib.crc32(choice.label.encode()) % len(SPARE_COLOURS)]


def pyplot():
    """matplotlib's pyplot on the Agg backend (files only, no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def output_dir(out: Path | None) -> Path:
    """``out`` (default ``results/figures``), checked but not created: files create it when written,
    so a command that fails before its first file leaves nothing behind."""
    folder = Path(out) if out is not None else DEFAULT_OUT
    blocker = next((p for p in (folder, *folder.parents) if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        raise UsageError(f"--out {str(folder)!r} cannot be a folder: {str(blocker)!r} is a file; give a folder path")
    return folder


def save_figure(fig: Figure, path: Path, dpi: int = DPI) -> Path:
    """Write ``fig`` as a PNG at ``dpi`` and close it."""
    try:
        atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=dpi, bbox_inches="tight"))
    finally:
        pyplot().close(fig)
    return path


def save_table(table: pd.DataFrame, path: Path) -> Path:
    """Write ``table`` as CSV (no index column), full float precision."""
    atomic_write(path, lambda f: table.to_csv(f, index=False), binary=False)
    return path
