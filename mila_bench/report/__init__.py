"""``mila-bench report``: rebuild Results.md from the run records, keeping what it cannot rebuild.

Results.md is a view of ``results/<run-id>/``. Each (dataset, model) section is rebuilt from
its records: one row per configuration over its seeds with paired statistics (see
``statistics``), figures, then the per-run rows. Nothing already in Results.md is lost: a
per-run row whose record is not in the results folder stays, marked and out of the
statistics; a section with no records at all (and any section the report does not make) stays
as it is; removing rows takes ``drop_unrecorded`` and names every row removed. Reproduction
sections are rebuilt from the records that ``reproduce`` tagged, optuna sections from Hydra's
sweep folders when present. Rebuilding is idempotent: on a fresh clone it gives the committed
file byte for byte.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from mila_bench.errors import UsageError, unknown_name

TITLE = """# Results

Rebuilt by `mila-bench report` from the run records in `{results}/` (tracked in git: the
evidence behind every row). One section per (dataset, model): first one row per configuration
over its seeds (mean ± sample std of the test metrics after the last epoch, accuracies in
percent, the Top-1 difference to the baseline with its confidence interval, paired over shared
seeds), then one row per run, to which `mila-bench train` and `mila-bench sweep` keep
appending; run `mila-bench report` again to refresh the summaries. Each run's record (resolved
config, per-epoch metrics, summary) is in `{results}/<run>/`.
"""


def build(results_dir: Path, markdown: Path, baseline: str = "relu", drop_unrecorded: bool = False) -> list[str]:
    """Rebuild ``markdown`` from the records in ``results_dir``; return what was rebuilt, kept and left out."""
    from mila_bench.records import results_md
    from mila_bench.records import runs
    from mila_bench.report import optuna_section
    from mila_bench.report.sections import FIGURE_PREFIX, run_section
    from mila_bench.report.suite_section import SECTION_PREFIX, suite_name, suite_section

    selector = parse_baseline(baseline)
    if not results_dir.is_dir():
        raise UsageError(f"--results {results_dir}: no such folder; give the folder of recorded runs (e.g. results)")
    if markdown.is_dir():
        raise UsageError(f"--markdown {markdown} is a folder, not a file; give a file path")
    runs.check_writable(results_dir / "figures", markdown)
    records, skipped = runs.load(results_dir)
    if not records and not markdown.is_file():
        raise UsageError(f"no recorded runs in {results_dir}/ (no */summary.json); run `mila-bench train` first")

    base = markdown.parent
    results_rel = Path(os.path.relpath(results_dir, base if str(base) else ".")).as_posix()
    figures_dir = results_dir / "figures"
    by_section: dict[str, list] = {}
    for record in records:
        by_section.setdefault(results_md.section_name(record.summary), []).append(record)
    by_reproduction: dict[str, list] = {}
    for record in records:
        tag = record.summary.reproduction
        if tag is not None and tag.section:
            by_reproduction.setdefault(tag.section, []).append(record)
    optuna_found = dict(optuna_section.optuna_sections(results_dir / "sweeps", base))
    by_suite: dict[str, list] = {}
    for record in records:
        if suite_name(record):
            by_suite.setdefault(SECTION_PREFIX + suite_name(record), []).append(record)

    report: list[str] = [f"skipped {s}" for s in skipped]
    written: list[Path] = []

    def edit(doc: results_md.Document) -> None:
        old_titles = {results_md.RESULTS_TITLE.strip()}
        if not doc.preamble.strip() or doc.preamble.strip() in old_titles or _is_our_title(doc.preamble):
            doc.preamble = TITLE.format(results=results_rel)
        headings = list(doc.sections) + sorted(h for h in by_section if h not in doc.sections)
        headings += sorted(h for h in by_reproduction if h not in headings)
        headings += sorted(h for h in optuna_found if h not in headings)
        headings += sorted(h for h in by_suite if h not in headings)
        new: dict[str, list[str]] = {}
        for heading in headings:
            old = doc.sections.get(heading, [])
            if heading in by_section:
                recorded = {r.run_id for r in by_section[heading]}
                unrecorded = [row for row in results_md.run_table_rows(old) if results_md.row_run_id(row) not in recorded]
                if drop_unrecorded and unrecorded:
                    report.extend(f"removed row {results_md.row_run_id(r)} from ## {heading} (no record)" for r in unrecorded)
                    unrecorded = []
                body, figures = run_section(heading, by_section[heading], unrecorded, selector, baseline, figures_dir, base)
                written.extend(figures)
                new[heading] = body
                report.append(f"rebuilt ## {heading}: {len(by_section[heading])} records{_left_out(by_section[heading], unrecorded)}")
            elif heading in by_reproduction:
                from mila_bench.report.reproduction import section_from_records

                new[heading] = section_from_records(by_reproduction[heading])
                report.append(f"rebuilt ## {heading}: {len(by_reproduction[heading])} records")
            elif heading in by_suite:
                body, figures = suite_section(heading.removeprefix(SECTION_PREFIX), by_suite[heading], figures_dir, base)
                written.extend(figures)
                new[heading] = body
                report.append(f"rebuilt ## {heading}: {len(by_suite[heading])} records")
            elif heading in optuna_found:
                new[heading] = optuna_found[heading]
                report.append(f"rebuilt ## {heading}: from {results_dir / 'sweeps'}")
            elif drop_unrecorded and results_md.has_run_table(old):
                gone = [results_md.row_run_id(r) for r in results_md.run_table_rows(old)]
                report.extend(f"removed row {g} from ## {heading} (no record)" for g in gone)
                report.append(f"removed ## {heading} (no records)")
            else:
                new[heading] = old
                why = "no records in " + str(results_dir) if results_md.has_run_table(old) else "not made by report"
                report.append(f"kept ## {heading} as it is ({why})")
        doc.sections = new

    results_md.locked_edit(markdown, edit)
    text = markdown.read_text()
    _remove_stale_figures(figures_dir, written, text, base, FIGURE_PREFIX)
    report += [f"figure {path}" for path in written]
    report.append(f"{markdown}: {len(results_md.read(markdown).sections)} sections from {len(records)} records")
    return report


def parse_baseline(text: str) -> tuple[str, float | None]:
    """``relu`` → (relu, None); ``mila:0.5`` → (mila, 0.5)."""
    from mila_bench.config import group_options

    name, _, beta = text.partition(":")
    allowed = group_options("activation")
    if name not in allowed:
        raise unknown_name("baseline activation", name, allowed)
    if not beta:
        return name, None
    try:
        value = float(beta)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise UsageError(f"--baseline {text}: β {beta!r} is not a finite number; use NAME or NAME:BETA, e.g. mila:0.5")
    return name, value


def _left_out(records: list, unrecorded: list) -> str:
    """What the section's statistics leave out, for the command's output."""
    from mila_bench.report.configurations import group

    configs = group(records)
    parts = [
        (len(unrecorded), "rows without record kept"),
        (sum(len(c.repeats) for c in configs), "repeats of a seed left out"),
        (sum(len(c.left_out) for c in configs), "unfinished or diverged runs left out"),
    ]
    return "".join(f", {n} {what}" for n, what in parts if n)


def _is_our_title(preamble: str) -> bool:
    """A preamble this command wrote (for any results folder), or the one it wrote before."""
    first = TITLE.split("{results}")[0].strip()
    return preamble.strip().startswith(first) or preamble.strip().startswith("# Results\n\nRebuilt by `mila-bench report`")


def _remove_stale_figures(figures_dir: Path, written: list[Path], text: str, base: Path, prefix: str) -> None:
    """Drop our figures that no section links any more; figures a kept section links stay."""
    keep = {p.resolve() for p in written}
    for path in figures_dir.glob(f"{prefix}*.png") if figures_dir.is_dir() else []:
        linked = f"({Path(os.path.relpath(path, base)).as_posix()})" in text
        if path.resolve() not in keep and not linked:
            path.unlink()
