"""Results.md, the one place that reads and writes it.

Results.md is a view of the run records in ``results/<run-id>/``: a finished run appends its
row under a file lock (so runs finishing at once never lose or tear rows), ``reproduce``
writes its section, and ``mila-bench report`` rebuilds the rest. This module knows the file's
shape (preamble, ``## `` sections, per-run tables) and how a record becomes a row; it does no
statistics.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mila_bench.errors import UsageError
from mila_bench.records.schema import Summary

RESULTS_TITLE = """# Results

Rows are appended by `mila-bench train` and `demo.py` when a run finishes: one table per
(dataset, model), one row per run. Each row's run record (resolved config, per-epoch
metrics, summary) is in `results/<run>/`. Accuracies are on the test split after the last
epoch, in percent.
"""
COLUMNS = (
    "Activation", "β", "Initialization", "Seed", "Epochs",
    "Top-1 (%)", "Top-3 (%)", "Top-5 (%)", "Test loss", "Train time (s)", "Run",
)  # fmt: skip
LOCK_TIMEOUT_S = 120.0
#: How a per-run row whose record is not in the results folder is marked in its Run cell.
NO_RECORD = "(no record)"


# ---------------------------------------------------------------- a record as a row


def section_name(summary: Summary) -> str:
    """The Results.md section of a run: its (dataset, model), plus depth and version for ResNets
    and the architecture for timm models."""
    section = f"{summary.dataset} · {summary.model}"
    if summary.model == "timm":
        section += f" · {summary.model_config['arch']}"
    if summary.model == "resnet":
        model = summary.model_config
        section += f" · depth {model['depth']} · v{model['version']}"
    return section


def results_row(summary: Summary) -> dict[str, object]:
    """A completed run's per-run row, from its summary (so ``report`` rebuilds exactly the appended rows)."""
    final, params = summary.final, summary.activation_params
    if final is None or summary.train_seconds is None:
        raise ValueError(f"run {summary.run_id} has no final metrics (status {summary.status}): it has no row")
    return {
        "Activation": activation_label(summary.activation, params, summary.activation_target),
        "β": beta_label(params, summary.learned if summary.learnable_beta else None),
        "Initialization": summary.initialization or "—",
        "Seed": summary.seed,
        "Epochs": summary.epochs,
        "Top-1 (%)": f"{100 * final.top1:.2f}",
        "Top-3 (%)": f"{100 * final.top3:.2f}",
        "Top-5 (%)": f"{100 * final.top5:.2f}",
        "Test loss": f"{final.test_loss:.4f}",
        "Train time (s)": f"{summary.train_seconds:.1f}",
        "Run": summary.run_id,
    }


def activation_label(name: str, params: Mapping[str, float], target: str | None = None) -> str:
    """The activation with its non-β parameters, e.g. ``aria2 (alpha=1.5)``; a plugin or custom
    target also names what ran, e.g. ``custom my_acts:serf (alpha=1.5)``."""
    others = ", ".join(f"{k}={v:g}" for k, v in params.items() if k != "beta")
    name = f"{name} {target}" if target else name
    return f"{name} ({others})" if others else name


def beta_label(params: Mapping[str, float], learned: Mapping[str, float] | None) -> str:
    """β as configured; for a learned β, its start and the mean learned value."""
    if "beta" not in params:
        return "—"
    if learned:
        betas = [v for k, v in learned.items() if k.endswith("beta")]
        return f"learned {params['beta']:g} → {sum(betas) / len(betas):.3g}"
    return f"{params['beta']:g}"


# ---------------------------------------------------------------- tables


def escape_cell(value: object) -> str:
    """Keep a table row one row: no raw pipes or line breaks inside a cell."""
    return " ".join(str(value).replace("|", "\\|").split())


def cells(line: str) -> list[str]:
    """A table line's cells without padding (escaped pipes stay inside their cell)."""
    if not line.startswith("|"):
        return []
    return [c.strip() for c in re.split(r"(?<!\\)\|", line.strip()[1:-1])]


def unescape(cell: str) -> str:
    return cell.replace("\\|", "|")


def markdown_table(rows: Sequence[Mapping[str, object]], columns: Sequence[str] | None = None) -> list[str]:
    """Markdown pipe-table lines for ``rows`` via tabulate, every cell escaped.

    tabulate directly rather than through pandas: a finishing run appends its row, and importing
    pandas there would add ~30 MB to the peak memory of every run.
    """
    from tabulate import tabulate

    columns = list(columns or (rows[0].keys() if rows else []))
    cells = [[escape_cell(r.get(c, "")) for c in columns] for r in rows]
    return tabulate(cells, headers=columns, tablefmt="pipe", disable_numparse=True).splitlines()


def render_table(rows: Sequence[Mapping[str, object]]) -> list[str]:
    """A per-run table (header, separator, rows): one aligned table however many rows."""
    return markdown_table(rows, COLUMNS)


def run_table_rows(body: Sequence[str]) -> list[dict[str, str]]:
    """The rows of the per-run table in a section body, as column → cell text (unescaped)."""
    at = next((i for i, line in enumerate(body) if cells(line) == list(COLUMNS)), None)
    if at is None:
        return []
    rows = []
    for line in body[at + 2 :]:
        if not line.startswith("|"):
            break
        rows.append(dict(zip(COLUMNS, (unescape(c) for c in cells(line)))))
    return rows


def row_run_id(row: Mapping[str, str]) -> str:
    """The run id of a per-run row, with any no-record mark removed."""
    return row.get("Run", "").split(" ")[0]


def has_run_table(body: Sequence[str]) -> bool:
    return any(cells(line) == list(COLUMNS) for line in body)


# ---------------------------------------------------------------- the file


@dataclass
class Document:
    """Results.md parsed: the preamble, then ``## `` sections in file order (heading → body lines)."""

    preamble: str
    sections: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> Document:
        preamble: list[str] = []
        sections: dict[str, list[str]] = {}
        current: list[str] | None = None
        for line in text.splitlines():
            if line.startswith("## "):
                current = sections.setdefault(line[3:].strip(), [])
            elif current is not None:
                current.append(line)
            else:
                preamble.append(line)
        return cls("\n".join(preamble).strip("\n") + "\n", sections)

    def text(self) -> str:
        parts = [self.preamble.rstrip("\n")]
        for heading, body in self.sections.items():
            parts.append("\n".join([f"## {heading}", "", *trim(body)]))
        return "\n\n".join(p for p in parts if p) + "\n"


def trim(lines: Sequence[str]) -> list[str]:
    """``lines`` without leading and trailing blank lines."""
    start, end = 0, len(lines)
    while start < end and not lines[start].strip():
        start += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    return list(lines[start:end])


def read(markdown: Path) -> Document:
    return Document.parse(markdown.read_text() if markdown.exists() else "")


def append_row(markdown: Path, section: str, row: Mapping[str, object]) -> None:
    """Add ``row`` to the per-run table under ``## section``, creating either if needed.

    The table is rendered again as a whole so the new row lines up with the old ones.
    """
    heading = escape_cell(section)

    def edit(doc: Document) -> None:
        body = doc.sections.setdefault(heading, [])
        old = run_table_rows(body)
        table = render_table([*old, row])
        at = next((i for i, line in enumerate(body) if cells(line) == list(COLUMNS)), None)
        if at is None:  # a new section, or one that lost its table (hand edit): start the table
            body[:] = [*trim(body), *([""] if trim(body) else []), *table]
            return
        end = at + 2 + len(old)
        body[at:end] = table

    locked_edit(markdown, edit)


def write_section(markdown: Path, section: str, body: Sequence[str]) -> None:
    """Put ``## section`` with ``body`` in ``markdown``: replace that section if it exists, else append."""

    def edit(doc: Document) -> None:
        doc.sections[escape_cell(section)] = list(body)

    locked_edit(markdown, edit)


def locked_edit(markdown: Path, edit: Callable[[Document], Document | None]) -> None:
    """Apply ``edit`` to the parsed ``markdown`` under its file lock, then write it atomically.

    The file is checked for a shape we can extend first, so a refused edit writes nothing.
    """
    from filelock import FileLock, Timeout

    from mila_bench.atomic import atomic_write

    markdown.parent.mkdir(parents=True, exist_ok=True)
    try:
        with FileLock(str(markdown) + ".lock", timeout=LOCK_TIMEOUT_S):
            check_results_file(markdown)
            doc = Document.parse(markdown.read_text() if markdown.exists() else RESULTS_TITLE)
            doc = edit(doc) or doc
            text = doc.text()
            atomic_write(markdown, lambda f: f.write(text), binary=False)
    except Timeout:
        raise UsageError(
            f"could not lock {markdown} within {LOCK_TIMEOUT_S:.0f} s; another process holds {markdown}.lock"
        ) from None


def check_results_file(markdown: Path) -> None:
    """Refuse a Results.md whose per-run tables were edited into a shape we cannot extend
    (a torn row, a missing separator), before any work is done and without touching it."""
    if not markdown.is_file():
        return
    lines = markdown.read_text().splitlines()
    for i, line in enumerate(lines):
        if cells(line) != list(COLUMNS):
            continue
        separator = cells(lines[i + 1]) if i + 1 < len(lines) else []
        if len(separator) != len(COLUMNS) or not all(re.fullmatch(r":?-+:?", c) for c in separator):
            raise _bad_shape(markdown, i + 2, "the line under a table header is not its |---| separator")
        for j in range(i + 2, len(lines)):
            if not lines[j].startswith("|"):
                break
            if len(cells(lines[j])) != len(COLUMNS):
                raise _bad_shape(markdown, j + 1, f"a row has {len(cells(lines[j]))} cells, the table {len(COLUMNS)}")


def _bad_shape(markdown: Path, line: int, what: str) -> UsageError:
    return UsageError(
        f"{markdown} line {line}: {what}; it was edited into a shape mila-bench cannot extend. "
        "Fix that line, or write elsewhere with results.markdown=FILE"
    )
