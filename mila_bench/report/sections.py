"""The body of one (dataset, model) section: summary over seeds, statistics, figures, per-run rows."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from mila_bench import significance as st
from mila_bench.report.configurations import METRICS, Configuration, counterparts, group, problem, text, varying
from mila_bench.records.results_md import NO_RECORD, markdown_table, render_table, results_row, row_run_id
from mila_bench.records.runs import Record

FIGURE_PREFIX = "report-"


def run_section(
    name: str,
    runs: Sequence[Record],
    unrecorded: Sequence[Mapping[str, str]],
    selector: tuple[str, float | None],
    baseline: str,
    figures_dir: Path,
    base: Path,
) -> tuple[list[str], list[Path]]:
    """The section's lines and the figures written for it.

    ``unrecorded`` are per-run rows already in Results.md whose records are not in the results
    folder: they stay in the per-run table, marked, and out of the statistics.
    """
    from mila_bench.report import figures

    configs = group(runs)
    done = [c for c in configs if c.replicates]
    lines = [
        "Over seeds: n = distinct seeds (a repeated configuration and seed counts once, its newest run); "
        "mean ± sample std of the test metrics after the last epoch, accuracies in percent; best mean per column "
        f"in bold. Δ Top-1 = this configuration − {baseline} with otherwise identical settings, in points, with its "
        "95 % confidence interval: a paired t-test over the seeds both ran where they share at least two, else "
        "Welch's t-test (column Test); p is Holm-corrected over the table's comparisons, n.s. = not significant "
        f"(p ≥ {st.ALPHA:g}).",
        "",
    ]
    if done:
        table, detectable = summary_table(done, selector, baseline)
        lines += table
        lines += ["", detectable_line(detectable)]
    else:
        lines.append("No completed runs.")
    if unrecorded:
        count = len(unrecorded)
        lines += [
            "",
            f"{count} per-run row{'s' if count != 1 else ''} below ha{'ve' if count != 1 else 's'} no record in the "
            f"results folder (marked {NO_RECORD}) and {'are' if count != 1 else 'is'} left out of the statistics.",
        ]
    repeats = [(c, r) for c in configs for r in c.repeats]
    if repeats:
        lines += ["", "Repeats of a configuration and seed (not counted; the newest run with that seed counts):", ""]
        lines += [f"- `{r.run_id}`: {c.label()}, seed {r.seed}, top-1 {100 * r.summary.final.top1:.2f}%"
                  for c, r in repeats]  # fmt: skip
    left_out = [(c, r) for c in configs for r in c.left_out]
    if left_out:
        lines += ["", "Not averaged (did not complete or diverged):", ""]
        lines += [f"- `{r.run_id}`: {c.label()}, seed {r.seed}: {problem(r)}" for c, r in left_out]
    written = []
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    beta_plot = figures.plot_beta(done, name, figures_dir / f"{FIGURE_PREFIX}{slug}-beta.png")
    curves = figures.plot_curves(done, name, figures_dir / f"{FIGURE_PREFIX}{slug}-curves.png")
    for path, title in ((beta_plot, "Test top-1 vs β"), (curves, "Test top-1 and loss per epoch")):
        if path is not None:
            lines += ["", f"![{title}, {name}]({Path(os.path.relpath(path, base)).as_posix()})"]
            written.append(path)
    rows = [results_row(r.summary) for r in runs if r.summary.final is not None]
    rows += [{**row, "Run": f"{row_run_id(row)} {NO_RECORD}"} for row in unrecorded]
    lines += ["", "Runs (one row each; `mila-bench train` and `mila-bench sweep` append here):", ""]
    lines += render_table(sorted(rows, key=row_run_id))
    return lines, written


def summary_table(
    configs: list[Configuration], selector: tuple[str, float | None], baseline: str
) -> tuple[list[str], list[st.Comparison]]:
    """One row per configuration, and the comparisons made against the baseline."""
    best = {}
    for metric, _, scale, fmt, higher in METRICS:
        means = [st.mean(c.values(metric)) for c in configs]
        finite = [m for m in means if math.isfinite(m)]
        if len(configs) > 1 and finite:
            best[metric] = format(scale * (max(finite) if higher else min(finite)), fmt)
    comparisons: dict[int, st.Comparison | str] = {}
    for i, config in enumerate(configs):
        matched = counterparts(config, configs, selector)
        if any(b is config for b in matched):
            comparisons[i] = "baseline"
        elif len(matched) > 1:
            comparisons[i] = "several baselines match; give NAME:BETA"
        elif matched:
            comparisons[i] = st.compare(config.by_seed("top1"), matched[0].by_seed("top1")) or "n < 2"
    tested = {i: c for i, c in comparisons.items() if isinstance(c, st.Comparison) and math.isfinite(c.p)}
    adjusted = dict(zip(tested, st.holm([c.p for c in tested.values()])))

    shown_varying = varying(configs)
    rows = []
    for i, config in enumerate(configs):
        run = config.first
        row: dict[str, object] = {
            "Activation": config.activation(),
            "β": config.beta_text(),
            "Initialization": run.summary.initialization or "—",
            "Epochs": run.summary.epochs,
        }
        if shown_varying:
            row["Other settings"] = ", ".join(f"{k}={text(run.settings.get(k))}" for k in shown_varying)
        row["n"] = len(config.replicates)
        for metric, title, scale, fmt, _ in METRICS:
            values = config.values(metric)
            cell = _mean_std(values, scale, fmt)
            shown = format(scale * st.mean(values), fmt) if values else None
            row[title] = f"**{cell}**" if metric in best and shown == best[metric] else cell
        row.update(_comparison_cells(comparisons.get(i), adjusted.get(i), baseline))
        rows.append(row)
    return markdown_table(rows), list(tested.values())


def detectable_line(comparisons: Sequence[st.Comparison]) -> str:
    """What the table's n and spread could detect, so a reader can tell 'no difference' from 'too few seeds'."""
    sizes = [c.detectable for c in comparisons if math.isfinite(c.detectable)]
    if not sizes:
        return ("Detectable difference: none of these comparisons has the seeds (at least two per side) to say "
                "how large a difference it could detect.")  # fmt: skip
    low, high = 100 * min(sizes), 100 * max(sizes)
    size = f"{low:.2f}" if f"{low:.2f}" == f"{high:.2f}" else f"{low:.2f}–{high:.2f}"
    missed = [c for c in comparisons if math.isfinite(c.detectable) and abs(c.delta) < c.detectable]
    return (
        f"Detectable difference: with these n and spreads, a comparison finds a Top-1 difference of {size} points "
        f"with {st.POWER:.0%} power at α = {st.ALPHA:g} (column Detectable, before the Holm correction); smaller "
        f"differences are likely to come out n.s. {len(missed)} of {len(comparisons)} measured differences are "
        "smaller than what their comparison can detect: there, n.s. means too few seeds to tell, not no difference."
    )


def _comparison_cells(comparison: st.Comparison | str | None, adjusted: float | None, baseline: str) -> dict:
    title = f"Δ Top-1 vs {baseline} [95 % CI]"
    if not isinstance(comparison, st.Comparison):
        note = "—" if comparison is None else comparison
        return {title: note, "Test": "—", "p (Holm)": "—", "Detectable": "—"}
    delta = f"{100 * comparison.delta:+.2f} [{100 * comparison.ci_low:+.2f}, {100 * comparison.ci_high:+.2f}]"
    test = f"paired, {comparison.n} seeds" if comparison.test == "paired" else "Welch"
    if adjusted is None:
        p = "—"
    else:
        p = f"{adjusted:.3g}" + (" (n.s.)" if adjusted >= st.ALPHA else "")
    detectable = f"{100 * comparison.detectable:.2f}" if math.isfinite(comparison.detectable) else "—"
    return {title: delta, "Test": test, "p (Holm)": p, "Detectable": detectable}


def _mean_std(values: Sequence[float], scale: float, fmt: str) -> str:
    if not values:
        return "—"
    mean = format(scale * st.mean(values), fmt)
    return mean if len(values) < 2 else f"{mean} ± {format(scale * st.std(values), fmt)}"
