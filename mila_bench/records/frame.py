"""Run records as pandas DataFrames, for notebooks and ``mila-bench runs``.

A view of ``results/<run-id>/`` like Results.md, read through :func:`mila_bench.records.runs.load`
so a notebook sees exactly the records the report sees. Column names follow MLflow's
``search_runs`` (``params.*``, ``metrics.*``) so code written against one reads the other.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import warnings
from collections.abc import Iterable, Sequence
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mila_bench.errors import UsageError

if TYPE_CHECKING:
    import pandas as pd

    from mila_bench.records.runs import Record

#: Column prefixes, in the order a filter key without one is tried.
PREFIXES = ("params.", "metrics.", "cost.", "learned.", "env.")
#: The columns before the prefixed ones, then the prefixed ones in this order.
LEADING = ("run_id", "status", "started", "parameters", "train_seconds", "resumed")
PREFIXES_SHOWN = ("metrics.", "cost.", "learned.", "pack.", "params.", "env.")
#: What ``mila-bench runs`` shows by default (a table a terminal can hold).
TABLE_COLUMNS = (
    "run_id", "status", "params.dataset.name", "params.model.name", "params.activation.name",
    "params.activation.beta", "params.seed", "metrics.epochs", "metrics.top1", "metrics.test_loss",
)  # fmt: skip


def load_runs(results: str | PathLike[str] = "results") -> pd.DataFrame:
    """One row per recorded run, oldest first.

    Columns: ``run_id``, ``status``, ``started``, ``parameters`` (trainable count),
    ``train_seconds``, ``resumed`` (how many times it was resumed), ``params.*`` (the resolved
    config, flattened to dotted keys), ``metrics.*`` (the final epoch: top1, test_loss, ...;
    empty for a run still running or diverged), ``cost.*`` (step time, images/s, saved bytes per
    image), ``learned.*`` (learned activation parameters), ``pack.*`` (id, member, size, step_ms:
    for runs trained in a pack) and ``env.*`` (torch, device, threads, ...). A folder whose record cannot be read is left out with a warning naming it.
    """
    import pandas as pd

    records = _records(Path(results))
    frame = pd.DataFrame([_row(record) for record in records])
    if frame.empty:
        return pd.DataFrame(columns=list(LEADING))
    order = [*LEADING, *(c for p in PREFIXES_SHOWN for c in frame.columns if c.startswith(p))]
    return frame[order + [c for c in frame.columns if c not in order]]


def load_metrics(results: str | PathLike[str] = "results") -> pd.DataFrame:
    """Every run's per-epoch metrics in long form: ``run_id``, ``epoch``, ``metric``, ``value``.

    Long form is what seaborn and ``DataFrame.pivot_table`` take; join it with
    :func:`load_runs` on ``run_id`` for the config of each run.
    """
    import pandas as pd

    parts = []
    for record in _records(Path(results)):
        if record.metrics is None or record.metrics.empty:
            continue
        long = record.metrics.melt(id_vars="epoch", var_name="metric", value_name="value")
        long.insert(0, "run_id", record.run_id)
        parts.append(long)
    if not parts:
        return pd.DataFrame(columns=["run_id", "epoch", "metric", "value"])
    return pd.concat(parts, ignore_index=True)


def select_runs(frame: pd.DataFrame, filters: Sequence[str]) -> pd.DataFrame:
    """The rows matching every ``KEY=VALUE`` filter (``VALUE`` may be ``a,b``: either).

    ``KEY`` is a column (``params.activation.beta``), a column without its prefix
    (``activation.beta``, ``top1``), or a config group standing for its name (``activation`` for
    ``params.activation.name``). Numbers compare as numbers (``activation.beta=0`` matches 0.0).
    """
    selected = frame
    for text in filters:
        _, column, wanted = _parse_filter(frame, text)
        mask = selected[column].map(lambda cell: any(_equal(cell, v) for v in wanted)).astype(bool)
        selected = selected.loc[mask]
    return selected


def check_filters(frame: pd.DataFrame, filters: Sequence[str]) -> None:
    """Refuse a filter no run can match, naming what can: a non-number for a numeric column, or a value
    no run in ``frame`` has (the values present, closest first). ``mila-bench runs`` checks before
    selecting, so "no runs match" means only that the filters, each met by some run, are not met together."""
    for text in filters:
        key, column, wanted = _parse_filter(frame, text)
        cells = [c for c in map(_plain, frame[column]) if not _null(c)]
        numeric = bool(cells) and all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in cells)
        for value in wanted:
            if numeric and value.lower() not in NULL_WORDS and not _is_number(value):
                raise UsageError(
                    f"{key}={value!r} is not a number; {column} holds numbers from {_text(min(cells))} to {_text(max(cells))}"
                )
            if not any(_equal(c, value) for c in frame[column]):
                raise UsageError(
                    f"no run has {key}={value} ({column}); values present, closest first: {_closest(value, cells, numeric)}"
                )


#: What a filter writes for an empty cell.
NULL_WORDS = ("null", "none", "")


def _parse_filter(frame: pd.DataFrame, text: str) -> tuple[str, str, list[str]]:
    """A filter's key as written, the column it names, and the values it accepts."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise UsageError(f"filter {text!r} is not KEY=VALUE, e.g. activation=mila or seed=0,1")
    return key.strip(), resolve_column(frame, key.strip()), [v.strip() for v in value.split(",")]


def _closest(value: str, cells: list[Any], numeric: bool, shown: int = 8) -> str:
    """The distinct values of ``cells``, closest to ``value`` first (by distance for numbers), as text."""
    present = sorted(set(cells), key=_text)
    if numeric and _is_number(value):
        present.sort(key=lambda c: abs(c - float(value)))
    else:
        present.sort(key=lambda c: -difflib.SequenceMatcher(None, value, _text(c)).ratio())
    more = f" ({len(present) - shown} more)" if len(present) > shown else ""
    return (", ".join(_text(c) for c in present[:shown]) or "none (the column is empty)") + more


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _null(cell: Any) -> bool:
    return cell is None or (isinstance(cell, float) and math.isnan(cell))


def _text(cell: Any) -> str:
    return f"{cell:g}" if isinstance(cell, float) else str(cell)


def resolve_column(frame: pd.DataFrame, key: str) -> str:
    """The column a filter or ``--columns`` key names; one clear line when none or several fit."""
    if key in frame.columns:
        return key
    candidates = [p + key for p in PREFIXES if p + key in frame.columns]
    if not candidates and f"params.{key}.name" in frame.columns:
        candidates = [f"params.{key}.name"]
    if len(candidates) == 1:
        return candidates[0]
    if candidates:
        raise UsageError(f"key {key!r} is ambiguous: {', '.join(candidates)}; write the full column name")
    keys = [*(_short(c) for c in frame.columns), *(c[len("params."):-len(".name")] for c in frame.columns
                                                 if c.startswith("params.") and c.endswith(".name"))]
    close = difflib.get_close_matches(key, keys, n=4, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else "; see the columns with --format csv"
    raise UsageError(f"no column {key!r} in the runs{hint}")


def _records(results: Path) -> list[Record]:
    from mila_bench.records.runs import load

    if not results.is_dir():
        raise UsageError(f"results folder {str(results)!r} does not exist; give the folder of run records")
    records, skipped = load(results)
    for reason in skipped:
        warnings.warn(f"left out {reason}", stacklevel=3)
    return records


def _row(record: Record) -> dict[str, Any]:
    summary = record.summary
    row: dict[str, Any] = {
        "run_id": record.run_id,
        "status": summary.status,
        "started": summary.started,
        "parameters": summary.parameters,
        "train_seconds": summary.train_seconds,
        "resumed": len(summary.resumed_from_epoch or []),
    }
    row.update({f"params.{k}": _cell(v) for k, v in record.settings.items()})
    if summary.final is not None:
        row.update({f"metrics.{k}": v for k, v in summary.final.as_dict().items() if k != "epoch"})
        row["metrics.epochs"] = summary.final.epoch
    if summary.cost is not None:
        row.update({f"cost.{k}": v for k, v in dataclasses.asdict(summary.cost).items()})
    row.update({f"learned.{k}": v for k, v in (summary.learned or {}).items()})
    if summary.pack is not None:  # trained as a member of a pack (hydra/launcher=packed)
        row.update({f"pack.{k}": v for k, v in dataclasses.asdict(summary.pack).items()})
    row.update({f"env.{k}": v for k, v in dataclasses.asdict(summary.environment).items() if not isinstance(v, (dict, list))})
    row["env.python"] = summary.versions.python
    return row


def _cell(value: Any) -> Any:
    """A config value as one cell: lists (e.g. ``model.timm_kwargs``) as their text, not spread out."""
    return str(value) if isinstance(value, (list, tuple, dict)) else _plain(value)


def _plain(value: Any) -> Any:
    """numpy scalars (what pandas hands back) as Python's, so ``isinstance`` means what it says."""
    return value.item() if hasattr(value, "item") and not isinstance(value, (str, bytes)) else value


def _equal(cell: Any, wanted: str) -> bool:
    cell = _plain(cell)
    if _null(cell):
        return wanted.lower() in NULL_WORDS
    if isinstance(cell, bool):
        return wanted.lower() == str(cell).lower()
    if isinstance(cell, (int, float)):
        try:
            return float(wanted) == float(cell)
        except ValueError:
            return False
    return str(cell) == wanted


def _short(column: str) -> str:
    return next((column[len(p):] for p in PREFIXES if column.startswith(p)), column)


def short_names(columns: Iterable[str]) -> list[str]:
    """Column names without their prefix (a group's ``.name`` as the group), for a table a terminal can hold."""
    return [_short(c)[: -len(".name")] if c.startswith("params.") and c.endswith(".name") else _short(c) for c in columns]
