"""A reproduction's Results.md section: our mean ± std beside the published numbers.

Rendered from the runs' records (their typed summaries) alone, so ``reproduce`` writes
it and ``report`` rebuilds it the same way from ``results/``.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from mila_bench.published.tables import RowRecipe, Table, published_tables, recipe_epochs, table_recipes
from mila_bench.records.schema import EpochMetrics, Summary
from mila_bench.overrides import override_key

#: (attribute of our final metrics, published attribute, column title, our scale, decimals)
COLUMNS = (
    ("top1", "top1", "Top-1", 100.0, 2),
    ("top3", "top3", "Top-3", 100.0, 2),
    ("top5", "top5", "Top-5", 100.0, 2),
    ("keras_val_loss", "loss", "Loss", 1.0, 4),
)
#: A Δ within this many sample standard deviations of our runs reads as run-to-run spread.
SPREAD_STDS = 2.0


def section_heading(table: str, epochs: int, seeds: int, only: Sequence[str], overrides: Sequence[str]) -> str:
    """The Results.md heading of a reproduction: everything that tells one reproduction from another."""
    from mila_bench.report.configurations import POOLED_KEYS, matches as pooled

    parts = ["Reproduction", table, _plural(epochs, "epoch"), _plural(seeds, "seed")]
    if only:
        parts.append("only " + ", ".join(sorted(only)))
    # Overrides that change what is measured; where data lives or how visibly it runs does not.
    measured = [o for o in overrides if not pooled(override_key(o), POOLED_KEYS)]
    if measured:
        parts.append(" ".join(measured))
    return " · ".join(parts)


def section_from_records(records: Sequence) -> list[str]:
    """The body of a reproduction's section from its runs' records (``runs.Record``), as ``reproduce``
    writes it and ``report`` rebuilds it: the newest completed run per (row, seed) counts."""
    tag = records[0].summary.reproduction
    table = published_tables()[tag.table]
    plans = table_recipes(table)
    if tag.only:
        plans = [p for p in plans if p.name in tag.only]
    newest: dict[tuple[str, int], object] = {}
    for record in sorted(records, key=lambda r: r.run_id):
        if record.summary.status == "completed":
            newest[(record.summary.reproduction.row, record.seed)] = record
    summaries = [r.summary for _, r in sorted(newest.items(), key=lambda item: item[0][1])]
    return comparison_section(table, plans, summaries, tag.overrides)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"



def matches(plan: RowRecipe, record: Summary) -> bool:
    """Whether a run (its summary) is a run of ``plan``: its activation with the plan's parameters."""
    params = record.activation_params
    return record.activation == plan.name and all(
        k in params and abs(float(params[k]) - v) <= 1e-9 * max(1.0, abs(v)) for k, v in plan.params.items()
    )


def comparison_section(
    table: Table, plans: Sequence[RowRecipe], records: Sequence[Summary], overrides: Sequence[str] = ()
) -> list[str]:
    """The body of a reproduction section (comparison table, then notes) from the runs' records.

    ``plans``: the table's rows as :func:`table_recipes` gives them (skipped ones are listed);
    ``records``: the summaries of the reproduction's completed runs, matched to rows by
    activation and parameters; rows without runs are left out.
    """
    results = [(p, [r.final for r in records if matches(p, r)]) for p in plans if not p.skipped]
    results = [(p, finals) for p, finals in results if finals]
    body, within, judged = comparison_table(results)
    seeds = ", ".join(str(s) for s in sorted({r.seed for r in records}))
    epochs = sorted({r.epochs for r in records})
    trained = f"{epochs[0]} epoch{'s' if epochs[0] != 1 else ''}" if len(epochs) == 1 else f"{epochs} epochs"
    published_epochs = recipe_epochs(table)
    dataset = records[0].dataset if records else table.dataset
    n = f"{SPREAD_STDS:g}"
    notes = [
        f"Recipe `experiment={table.experiment}`, {trained}, seeds {seeds}, on {dataset}. **Published**: one "
        f"Keras run per row with no seed control, the test metrics of its last epoch ({published_epochs}), not "
        "the best one; its Loss is the table's Loss column ÷ 10, which is Keras' val_loss (cross-entropy + "
        "the l2(1e-4) kernel penalty). **Ours**: mean ± sample std over the seeds of the last epoch "
        "(accuracies in %); Loss is the same Keras val_loss (`keras_val_loss` in each run's metrics.csv and "
        "summary.json).",
        "Δ = ours − published. A published number is a single draw from its own run-to-run spread, so Δ is "
        f"read against ours: *(within {n}σ)* marks a Δ within ±{n} sample std of our runs, i.e. within the "
        "spread that seeds alone produce, where the difference is no evidence that the two set-ups differ; "
        f"*(beyond {n}σ)* marks one outside it. With few seeds the std is itself rough. "
        f"Here {within} of {judged} Δs are within the spread."
        if judged
        else "Δ = ours − published. With one seed per row there is no spread of ours to read a Δ against, so "
        "none is called within or beyond run-to-run noise.",
    ]
    if epochs != [published_epochs]:
        notes.append(
            f"Trained {trained}, the published runs {published_epochs}: these Δs compare different training "
            "lengths, not the recipe."
        )
    notes.append("Each run also has its own row (its dataset/model table) and record (results/).")
    if overrides:
        notes.append("Overrides: " + " ".join(f"`{o}`" for o in overrides))
    notes += [f"Skipped: {p.row.label} ({p.skipped})" for p in plans if p.skipped]
    return [*body, "", *[f"{n}  " for n in notes]]


def comparison_table(results: Sequence[tuple[RowRecipe, Sequence[EpochMetrics]]]) -> tuple[list[str], int, int]:
    """Markdown lines: per row, our mean ± std and n beside the published Top-1/3/5 and loss, and Δ
    read against our spread; also how many Δs were within the spread, of how many read."""
    import pandas as pd

    records, within, judged = [], 0, 0
    for plan, finals in results:
        record: dict[str, str] = {"Activation": plan.row.label, "Ran as": plan.ran_as, "n": str(len(finals))}
        for key, attribute, title, scale, decimals in COLUMNS:
            values = [scale * getattr(f, key) for f in finals if getattr(f, key) is not None]
            published = getattr(plan.row, attribute)
            mean = statistics.fmean(values) if values else None
            std = statistics.stdev(values) if len(values) > 1 else None
            if mean is None:
                record[f"{title} ours"] = "—"
            else:
                record[f"{title} ours"] = f"{mean:.{decimals}f}" + (f" ± {std:.{decimals}f}" if std is not None else "")
            record[f"{title} published"] = f"{published:.{decimals}f}" if published is not None else "—"
            if mean is None or published is None:
                record[f"Δ {title}"] = "—"
                continue
            delta = mean - published
            record[f"Δ {title}"] = f"{delta:+.{decimals}f}"
            if std is not None:
                judged += 1
                inside = abs(delta) <= SPREAD_STDS * std
                within += inside
                record[f"Δ {title}"] += f" ({'within' if inside else 'beyond'} {SPREAD_STDS:g}σ)"
        records.append(record)
    lines = pd.DataFrame(records).to_markdown(index=False, tablefmt="pipe", disable_numparse=True).splitlines()
    return lines, within, judged
