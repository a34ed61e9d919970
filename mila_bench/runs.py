"""Run records and the Results.md tables.

A finished run is written as ``results/<run-id>/`` (config.yaml, metrics.csv, summary.json)
in one go through a temporary folder, then one row is added to the ``Results.md`` table of
its (dataset, model) under a file lock, so runs finishing at once never lose or tear rows.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

from mila_bench.errors import UsageError
from mila_bench.files import atomic_write

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
#: Trainer keys that may differ between a run and its resumption.
RESUME_IGNORES = ("resume", "progress")


def new_run_id(dataset: str, model: str, activation: str, seed: int) -> str:
    """Sortable by time, readable, and unique even for runs started in the same second."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{dataset}-{model}-{activation}-s{seed}-{uuid.uuid4().hex[:6]}"


def check_writable(results_dir: Path, markdown: Path) -> None:
    """Fail before training, not after, when the outputs cannot be written."""
    if markdown.is_dir():
        raise UsageError(f"results.markdown={markdown} is a folder, not a file; give a file path")
    check_results_file(markdown)
    if results_dir.exists() and not results_dir.is_dir():
        raise UsageError(f"results.dir={results_dir} is a file; give a folder path")
    for target in (results_dir, markdown.parent):
        existing = next(p for p in (target, *target.parents) if p.exists())
        if not existing.is_dir():
            raise UsageError(f"cannot create {target}: {existing} is a file; choose another results path")
        if not os.access(existing, os.W_OK):
            raise UsageError(f"cannot write to {existing} (permission denied); choose another results path")


def write_run(
    results_dir: Path, run_id: str, config_yaml: str, metrics: Sequence[Mapping], summary: Mapping
) -> Path:
    """Write the run record atomically: a crash leaves no half-written run folder."""
    import pandas as pd

    results_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=results_dir, prefix=f".incomplete-{run_id}-"))
    try:
        (tmp / "config.yaml").write_text(config_yaml)
        pd.DataFrame(list(metrics)).to_csv(tmp / "metrics.csv", index=False)
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        final = results_dir / run_id
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def start_run(results_dir: Path, run_id: str, config_yaml: str, summary: Mapping) -> Path:
    """Create the run's folder when training starts (status ``running``), so a killed run can
    be resumed from its checkpoints and is never mistaken for a finished one."""
    run_dir = results_dir / run_id
    run_dir.mkdir(parents=True)
    atomic_write(run_dir / "config.yaml", lambda f: f.write(config_yaml), binary=False)
    write_summary(run_dir, summary)
    return run_dir


def write_summary(run_dir: Path, summary: Mapping) -> None:
    text = json.dumps(summary, indent=2) + "\n"
    atomic_write(run_dir / "summary.json", lambda f: f.write(text), binary=False)


def write_metrics(run_dir: Path, metrics: Sequence[Mapping]) -> None:
    """The per-epoch metrics so far, rewritten atomically after every epoch."""
    import pandas as pd

    atomic_write(run_dir / "metrics.csv", lambda f: pd.DataFrame(list(metrics)).to_csv(f, index=False), binary=False)


def find_resumable(results_dir: Path, config: Mapping) -> tuple[Path, str] | None:
    """The run in ``results_dir`` whose config equals ``config``, and its status, for ``trainer.resume``.

    A finished run (``completed`` or ``diverged``, the newest) comes first: re-running a sweep
    must not train it again. Else the newest unfinished (``running``) one; None when there is none.
    """
    from omegaconf import OmegaConf

    def comparable(cfg: Mapping) -> dict:
        plain = dict(OmegaConf.to_container(OmegaConf.create(dict(cfg)), resolve=True))
        trainer = dict(plain.get("trainer", {}))
        for key in RESUME_IGNORES:
            trainer.pop(key, None)
        return {**plain, "trainer": trainer}

    wanted = comparable(config)
    candidates = sorted(results_dir.glob("*/summary.json"), reverse=True) if results_dir.is_dir() else []
    unfinished = None
    for summary_path in candidates:
        try:
            status = json.loads(summary_path.read_text()).get("status")
        except (OSError, ValueError):
            continue
        run_dir = summary_path.parent
        if status not in ("completed", "diverged", "running") or (unfinished and status == "running"):
            continue
        if comparable(OmegaConf.load(run_dir / "config.yaml")) != wanted:
            continue
        if status != "running":
            return run_dir, status
        unfinished = (run_dir, status)
    return unfinished


def escape_cell(value: object) -> str:
    """Keep a table row one row: no raw pipes or line breaks inside a cell."""
    return " ".join(str(value).replace("|", "\\|").split())


def render_table(rows: Sequence[Mapping[str, object]]) -> list[str]:
    """Markdown table lines (header, separator, rows) for ``rows``, via pandas + tabulate."""
    import pandas as pd

    frame = pd.DataFrame([{c: escape_cell(r.get(c, "")) for c in COLUMNS} for r in rows], columns=list(COLUMNS))
    return frame.to_markdown(index=False, tablefmt="pipe", disable_numparse=True).splitlines()


def append_row(markdown: Path, section: str, row: Mapping[str, object]) -> None:
    """Add ``row`` to the table under ``## section`` in ``markdown``, creating either if needed."""
    table = render_table([row])
    heading = f"## {escape_cell(section)}"
    _locked_edit(markdown, lambda text: _insert_row(text, heading, table))


def write_section(markdown: Path, section: str, body: Sequence[str]) -> None:
    """Put ``## section`` with ``body`` lines in ``markdown``: replace that section if it exists, else append."""
    heading = f"## {escape_cell(section)}"

    def edit(text: str) -> str:
        lines = text.splitlines()
        if heading in lines:
            start = lines.index(heading)
            end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
            lines[start:end] = [heading, "", *body, ""]
        else:
            while lines and not lines[-1].strip():
                lines.pop()
            lines += ["", heading, "", *body, ""]
        while lines and not lines[-1].strip():
            lines.pop()
        return "\n".join(lines) + "\n"

    _locked_edit(markdown, edit)


def check_results_file(markdown: Path) -> None:
    """Refuse a Results.md whose per-run tables were edited into a shape we cannot extend
    (a torn row, a missing separator), before any work is done and without touching it."""
    if not markdown.is_file():
        return
    lines = markdown.read_text().splitlines()
    for i, line in enumerate(lines):
        if _cells(line) != list(COLUMNS):
            continue
        separator = _cells(lines[i + 1]) if i + 1 < len(lines) else []
        if len(separator) != len(COLUMNS) or not all(re.fullmatch(r":?-+:?", c) for c in separator):
            raise _bad_shape(markdown, i + 2, "the line under a table header is not its |---| separator")
        for j in range(i + 2, len(lines)):
            if not lines[j].startswith("|"):
                break
            if len(_cells(lines[j])) != len(COLUMNS):
                raise _bad_shape(markdown, j + 1, f"a row has {len(_cells(lines[j]))} cells, the table {len(COLUMNS)}")


def _bad_shape(markdown: Path, line: int, what: str) -> UsageError:
    return UsageError(
        f"{markdown} line {line}: {what}; it was edited into a shape mila-bench cannot extend. "
        "Fix that line, or write elsewhere with results.markdown=FILE"
    )


def _locked_edit(markdown: Path, edit) -> None:
    """Apply ``edit`` (old text → new text) to ``markdown`` under its file lock, atomically."""
    from filelock import FileLock, Timeout

    markdown.parent.mkdir(parents=True, exist_ok=True)
    try:
        with FileLock(str(markdown) + ".lock", timeout=LOCK_TIMEOUT_S):
            check_results_file(markdown)
            new_text = edit(markdown.read_text() if markdown.exists() else RESULTS_TITLE)
            atomic_write(markdown, lambda f: f.write(new_text), binary=False)
    except Timeout:
        raise UsageError(
            f"could not lock {markdown} within {LOCK_TIMEOUT_S:.0f} s; another process holds {markdown}.lock"
        ) from None


def _insert_row(text: str, heading: str, table: list[str]) -> str:
    """The text with the row (``table[2]``) added at the end of the section's table."""
    body = text.splitlines()
    if heading not in body:
        while body and not body[-1].strip():
            body.pop()
        return "\n".join([*body, "", heading, "", *table]) + "\n"
    at = body.index(heading) + 1
    end = next((i for i in range(at, len(body)) if body[i].startswith("## ")), len(body))
    # The section's per-run table is the one with this header; `mila-bench report` puts a summary table above it.
    found = next((i for i in range(at, end) if _cells(body[i]) == _cells(table[0])), None)
    if found is not None:
        at = found
        while at < len(body) and body[at].startswith("|"):
            at += 1
        body[at:at] = table[2:]
    else:  # the section lost its table (hand edit): start it again
        while at < len(body) and not body[at].startswith("|") and not body[at].startswith("#"):
            at += 1
        body[at:at] = ["", *table, ""] if at < len(body) else ["", *table]
    return "\n".join(body) + "\n"


def _cells(line: str) -> list[str]:
    """A table line's cells without padding, so headers compare equal whatever the column widths."""
    if not line.startswith("|"):
        return []
    return [c.strip() for c in re.split(r"(?<!\\)\|", line.strip()[1:-1])]
