"""A suite's Results.md section: tasks × activations, ranked across tasks, with what each costs.

Rendered from the records alone (runs tagged ``suite.name``/``suite.task`` by ``mila-bench
suite``): the newest completed run per (task, activation, seed) counts. The ranking is
:mod:`mila_bench.report.ranking` over (task, seed) blocks; cost is each activation's median step
time and bytes saved for backward relative to ReLU's in the same task.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from pathlib import Path

from mila_bench.errors import UsageError

SECTION_PREFIX = "Suite "
BASELINE = "relu"


def suite_name(record: object) -> str | None:
    """The suite a run belongs to (its config's ``suite.name``), None for a run outside any suite."""
    name = record.settings.get("suite.name")  # type: ignore[attr-defined]
    return str(name) if name else None


def newest(records: Sequence) -> dict[tuple[str, str, int], object]:
    """(task, activation, seed) → the newest completed record."""
    chosen: dict[tuple[str, str, int], object] = {}
    for record in sorted(records, key=lambda r: r.run_id):
        if record.summary.status == "completed" and record.summary.final is not None:
            chosen[(str(record.settings["suite.task"]), record.summary.activation, record.seed)] = record
    return chosen


def suite_section(name: str, records: Sequence, figures_dir: Path, base: Path) -> tuple[list[str], list[Path]]:
    """The body of ``## Suite NAME`` and the figures written for it."""
    import pandas as pd

    from mila_bench.config import OBJECTIVES
    from mila_bench.records.results_md import markdown_table
    from mila_bench.report import ranking
    from mila_bench.suites import load

    try:
        metric = load(name).metric
    except UsageError:  # a suite no longer in configs/: its records still rank, by top-1
        metric = "top1"
    runs = newest(records)
    rows = [
        {"task": task, "activation": act, "seed": seed, "value": float(getattr(r.summary.final, metric)),
         "step_ms": r.summary.cost.step_ms if r.summary.cost else None,
         "saved": r.summary.cost.saved_bytes_per_image if r.summary.cost else None}
        for (task, act, seed), r in runs.items()
    ]  # fmt: skip
    frame = pd.DataFrame(rows)
    tasks = sorted(frame.task.unique())
    activations = sorted(frame.activation.unique())
    higher = OBJECTIVES[metric] == "maximize"  # the direction sweeps optimize it in: test_loss is minimized
    scale, unit = (100.0, " (%)") if metric.startswith("top") else (1.0, "")
    lines = [
        f"`mila-bench suite {name}`: {len(tasks)} tasks × {len(activations)} activations, "
        f"{frame.seed.nunique()} seeds, {len(frame)} completed runs. Cells: {metric}{unit} after the last "
        "epoch, mean ± sample std over seeds (n).",
        "",
        *markdown_table(_task_table(frame, tasks, activations, scale)),
        "",
    ]
    figures: list[Path] = []
    try:
        figure = figures_dir / f"suite-{name}-cd.png"
        ranked = ranking.rank(frame[["task", "seed", "activation", "value"]], higher_is_better=higher, figure=figure)
        figures.append(figure)
        lines += _ranking_lines(ranked, figure, base)
    except UsageError as err:
        lines += [f"No ranking across tasks: {err}.", ""]
    lines += _cost_lines(frame, tasks, activations)
    return lines, figures


def _task_table(frame, tasks: list[str], activations: list[str], scale: float) -> list[dict[str, str]]:
    table = []
    for task in tasks:
        row = {"Task": task}
        for act in activations:
            values = [scale * v for v in frame[(frame.task == task) & (frame.activation == act)].value]
            if not values:
                row[act] = "—"
            elif len(values) == 1:
                row[act] = f"{values[0]:.2f} (1)"
            else:
                row[act] = f"{statistics.fmean(values):.2f} ± {statistics.stdev(values):.2f} ({len(values)})"
        table.append(row)
    return table


def _ranking_lines(ranked, figure: Path, base: Path) -> list[str]:
    import os

    from mila_bench.records.results_md import markdown_table
    from mila_bench.report import ranking

    names = list(ranked.mean_ranks)
    differ = [f"{a} vs {b}" for i, a in enumerate(names) for b in names[i + 1 :] if ranked.differs(a, b)]
    table = [{"Activation": a, "Mean rank": f"{r:.2f}"} for a, r in ranked.mean_ranks.items()]
    link = Path(os.path.relpath(figure, base if str(base) else ".")).as_posix()
    return [
        "**Across tasks** (autorank: Friedman test, Nemenyi post-hoc):",
        "",
        *markdown_table(table),
        "",
        ranking.limits(ranked) + " "
        + (f"Pairs that differ: {', '.join(differ)}." if differ else "No pair differs by more than the CD."),
        "",
        f"![Critical-difference diagram of suite activations]({link})",
        "",
    ]


def _cost_lines(frame, tasks: list[str], activations: list[str]) -> list[str]:
    """Median step time and saved bytes of each activation relative to ReLU in the same task."""
    from mila_bench.records.results_md import markdown_table

    if BASELINE not in activations or frame.step_ms.isna().all():
        return ["No cost relative to ReLU: the suite ran without relu (or without cost records).", ""]
    table, ratios = [], {a: ([], []) for a in activations}
    for task in tasks:
        rows = frame[frame.task == task]
        base_time = rows[rows.activation == BASELINE].step_ms.median()
        base_bytes = rows[rows.activation == BASELINE].saved.median()
        row = {"Task": task, "relu step (ms)": f"{base_time:.2f}", "relu saved (KB/image)": f"{base_bytes / 1024:.1f}"}
        for act in activations:
            if act == BASELINE:
                continue
            mine = rows[rows.activation == act]
            time_ratio, byte_ratio = mine.step_ms.median() / base_time, mine.saved.median() / base_bytes
            row[f"{act} time, memory"] = f"{time_ratio:.2f}×, {byte_ratio:.2f}×"
            if math.isfinite(time_ratio) and math.isfinite(byte_ratio):
                ratios[act][0].append(time_ratio)
                ratios[act][1].append(byte_ratio)
        table.append(row)
    summary = ", ".join(
        f"{act} {statistics.geometric_mean(t):.2f}× time, {statistics.geometric_mean(b):.2f}× memory"
        for act, (t, b) in ratios.items() if t
    )  # fmt: skip
    return [
        "**Cost relative to ReLU** in each task: median training step time on the run's device (after "
        "warm-up) and bytes saved for backward per image (counted, device-independent):",
        "",
        *markdown_table(table),
        "",
        f"Across tasks (geometric mean of the ratios): {summary}.",
        "",
    ]
