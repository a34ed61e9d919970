"""``mila-bench runs``: the run records as a table, CSV or JSON (see :mod:`mila_bench.records.frame`)."""

from __future__ import annotations

import warnings

from mila_bench.errors import UsageError

FORMATS = ("table", "csv", "json")


def render(results: str, filters: list[str], output: str, columns: str | None) -> str:
    """The text ``runs`` prints; a bad format, filter or column is one :class:`UsageError` line."""
    if output not in FORMATS:
        raise UsageError(f"--format {output!r} is not one of {', '.join(FORMATS)}")
    from mila_bench.records.frame import TABLE_COLUMNS, check_filters, load_runs, resolve_column, select_runs, short_names

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frame = load_runs(results)
    notes = [f"note: {w.message}\n" for w in caught]
    check_filters(frame, filters)
    chosen = select_runs(frame, filters)
    if output == "csv":
        return chosen.to_csv(index=False)
    if output == "json":
        return chosen.to_json(orient="records", indent=1) + "\n"
    if columns:
        shown = [resolve_column(frame, key.strip()) for key in columns.split(",") if key.strip()]
    else:
        shown = [c for c in TABLE_COLUMNS if c in frame.columns]
    if chosen.empty:
        return "".join(notes) + f"no runs match {' '.join(filters)} ({len(frame)} runs in {results})\n"
    from tabulate import tabulate

    cells = chosen[shown].astype(object).where(chosen[shown].notna(), None)  # empty, not "nan"
    table = tabulate(cells.values.tolist(), headers=short_names(shown), tablefmt="simple", missingval="",
                     floatfmt="g")  # fmt: skip
    return "".join(notes) + table + f"\n{len(chosen)} of {len(frame)} runs\n"
