"""Accuracy against depth: the deep-network degradation study of the Mish line of work.

A ``deep_mlp`` (width 64 by default) with the activation under test after every hidden
layer is trained at each depth; plain stacks like this stop training at some depth, and
where that happens depends on the activation.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mila_bench.analysis.choices import ActivationChoice
from mila_bench.analysis.style import DPI, save_table
from mila_bench.analysis.curves import plot_lines, summarise
from mila_bench.analysis.paired import paired_tests
from mila_bench.analysis.training import Reporter, prepare, train_one

DEFAULT_DEPTHS = (2, 4, 8, 15, 25)


def depth_overrides(depth: int, width: int) -> tuple[str, ...]:
    """The config overrides selecting a ``deep_mlp`` of this depth and width."""
    return ("model=deep_mlp", f"model.depth={depth}", f"model.width={width}")


def depth_runs(
    choices: Sequence[ActivationChoice],
    depths: Sequence[int],
    width: int,
    seeds: int,
    overrides: Sequence[str],
    report: Reporter,
):
    """One row per (activation, depth, seed): the final test top-1 of that model."""
    import pandas as pd

    from mila_bench.training.engine import evaluate

    study = prepare([(c, depth_overrides(d, width)) for c in choices for d in depths], overrides)
    rows = []
    for choice in choices:
        for depth in depths:
            extra = depth_overrides(depth, width)
            for seed in study.seeds(seeds):
                model = train_one(study, choice, seed, extra)
                top1 = evaluate(model, study.data.test, study.config(choice, extra).trainer.eval_batch_size)["top1"]
                rows.append({"activation": choice.label, "depth": depth, "width": width, "seed": seed, "top1": top1})
                report(f"depth: {choice.label}, {depth} hidden layers, seed {seed}: top-1 {100 * top1:.2f}%")
    return pd.DataFrame(rows)


def run(
    choices: Sequence[ActivationChoice],
    depths: Sequence[int],
    width: int,
    seeds: int,
    overrides: Sequence[str],
    out: Path,
    report: Reporter,
    dpi: int = DPI,
) -> list[Path]:
    """Write ``depth.png``, ``depth.csv`` (mean ± std per depth), ``depth_runs.csv`` (every seed)
    and ``depth_pairs.csv`` (each pair of activations compared seed by seed, see ``paired``)."""
    return write(depth_runs(choices, depths, width, seeds, overrides, report), choices, depths, width, out, dpi)


def write(
    runs, choices: Sequence[ActivationChoice], depths: Sequence[int], width: int, out: Path, dpi: int = DPI
) -> list[Path]:
    """The files of :func:`run` from its per-seed table (also for tables trained in parts and concatenated)."""
    summary = summarise(runs, ["activation", "depth"])
    title = f"Test accuracy of a width-{width} MLP as depth grows"
    return [
        plot_lines(summary, choices, "depth", "hidden layers", title, out / "depth.png", dpi, xticks=depths),
        save_table(summary, out / "depth.csv"),
        save_table(runs, out / "depth_runs.csv"),
        save_table(paired_tests(runs, ["depth"]), out / "depth_pairs.csv"),
    ]
