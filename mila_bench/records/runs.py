"""Run records: ``results/<run-id>/{config.yaml, metrics.csv, summary.json}``.

The record is the source of truth (Results.md is a view of it, see ``results_md``): it is
created when training starts (status ``running``), rewritten atomically after every epoch,
tracked in git, and read back by ``report`` and by resume. What summary.json and metrics.csv
hold is :mod:`mila_bench.records.schema`; they are written and read only through it here.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mila_bench.errors import UnreadableRecord, UsageError
from mila_bench.atomic import atomic_write
from mila_bench.records.results_md import check_results_file
from mila_bench.records.schema import EpochMetrics, Summary, upgrade_config

#: Trainer keys that may differ between a run and its resumption.
RESUME_IGNORES = ("resume", "progress")
#: Top-level keys that are not part of a run's identity: which trackers view it (``logger``).
IDENTITY_IGNORES = ("logger",)


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
    results_dir: Path, run_id: str, config_yaml: str, metrics: Sequence[EpochMetrics], summary: Summary
) -> Path:
    """Write the run record atomically: a crash leaves no half-written run folder."""
    results_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=results_dir, prefix=f".incomplete-{run_id}-"))
    try:
        (tmp / "config.yaml").write_text(config_yaml)
        with open(tmp / "metrics.csv", "w", newline="") as f:
            _write_csv(f, [m.as_dict() for m in metrics])
        (tmp / "summary.json").write_text(summary_text(summary))
        final = results_dir / run_id
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def start_run(results_dir: Path, run_id: str, config_yaml: str, summary: Summary) -> Path:
    """Create the run's folder when training starts (status ``running``), so a killed run can
    be resumed from its checkpoints and is never mistaken for a finished one."""
    run_dir = results_dir / run_id
    run_dir.mkdir(parents=True)
    atomic_write(run_dir / "config.yaml", lambda f: f.write(config_yaml), binary=False)
    write_summary(run_dir, summary)
    return run_dir


def write_summary(run_dir: Path, summary: Summary) -> None:
    text = summary_text(summary)
    atomic_write(run_dir / "summary.json", lambda f: f.write(text), binary=False)


def summary_text(summary: Summary) -> str:
    return json.dumps(summary.to_json(), indent=2) + "\n"


def read_summary(run_dir: Path) -> Summary:
    """A run's summary.json as a typed :class:`Summary`; an unreadable one is one clear error naming it."""
    path = run_dir / "summary.json"
    try:
        return Summary.from_json(json.loads(path.read_text()))
    except (OSError, ValueError, UnreadableRecord) as err:
        raise UnreadableRecord(f"{path}: unreadable record ({err})") from None


def read_metrics(run_dir: Path) -> list[EpochMetrics]:
    """A run's metrics.csv as typed rows. An empty cell is what ``_write_csv`` makes of None (a column
    this row does not have, e.g. ``lr`` without a scheduler) and of NaN (a metric that was not finite)."""
    import csv
    import math

    optional = {f.name for f in dataclasses.fields(EpochMetrics) if f.default is None}
    with open(run_dir / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    try:
        return [
            EpochMetrics(**{k: _number(v) if v else math.nan for k, v in row.items() if v or k not in optional})
            for row in rows
        ]
    except (TypeError, ValueError) as err:
        raise UnreadableRecord(f"{run_dir / 'metrics.csv'}: unreadable record ({err})") from None


def _number(text: str) -> int | float:
    return int(text) if text.lstrip("-").isdigit() else float(text)


def write_metrics(run_dir: Path, metrics: Sequence[EpochMetrics]) -> None:
    """The per-epoch metrics so far, rewritten atomically after every epoch."""
    atomic_write(run_dir / "metrics.csv", lambda f: _write_csv(f, [m.as_dict() for m in metrics]), binary=False)


def _write_csv(f, rows: Sequence[Mapping]) -> None:
    """Rows as CSV the way pandas writes them (columns in order of appearance, None/NaN empty), with
    the csv module: training should not pay pandas' import (time and ~30 MB) to record an epoch."""
    import csv
    import math

    columns = list(dict.fromkeys(k for row in rows for k in row))
    writer = csv.writer(f, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        values = (row.get(c) for c in columns)
        writer.writerow("" if v is None or (isinstance(v, float) and math.isnan(v)) else v for v in values)


def find_resumable(results_dir: Path, config: Mapping) -> tuple[Path, str] | None:
    """The run in ``results_dir`` whose config equals ``config``, and its status, for ``trainer.resume``.

    A finished run (``completed`` or ``diverged``, the newest) comes first: re-running a sweep
    must not train it again. Else the newest unfinished (``running``) one; None when there is none.
    Only each record's status is read here (a summary that cannot give one is passed over); the
    chosen record is read whole when it is resumed.
    """
    from omegaconf import OmegaConf

    def comparable(cfg: Mapping) -> dict:
        plain = upgrade_config(dict(OmegaConf.to_container(OmegaConf.create(dict(cfg)), resolve=True)))
        trainer = dict(plain.get("trainer", {}))
        for key in RESUME_IGNORES:
            trainer.pop(key, None)
        return {**{k: v for k, v in plain.items() if k not in IDENTITY_IGNORES}, "trainer": trainer}

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
        if comparable(read_config(run_dir)) != wanted:
            continue
        if status != "running":
            return run_dir, status
        unfinished = (run_dir, status)
    return unfinished


@dataclass
class Record:
    """One run as recorded: its summary, its flattened resolved config and its per-epoch metrics."""

    run_id: str
    folder: Path
    summary: Summary
    settings: dict[str, object]  # the resolved config, flattened to dotted keys
    metrics: object | None  # pandas DataFrame of metrics.csv, None when absent

    @property
    def seed(self) -> int:
        return self.summary.seed


def read_config(run_dir: Path) -> dict[str, Any]:
    """A run's ``config.yaml`` as plain data, read by libyaml with OmegaConf's rules for numbers
    (``1e-3`` is a float): the same values as ``OmegaConf.load``, which parses in pure Python and
    took 0.75 s of the 1 s that reading the 165 committed records cost (libyaml: 0.05 s)."""
    import yaml

    return yaml.load((run_dir / "config.yaml").read_text(), Loader=_config_loader())


@functools.cache
def _config_loader() -> type:
    import yaml
    from omegaconf._utils import get_yaml_loader

    class Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
        pass

    Loader.yaml_implicit_resolvers = {k: list(v) for k, v in get_yaml_loader().yaml_implicit_resolvers.items()}
    return Loader


def flat_config(config: Mapping[str, Any], leave_out: Sequence[str] = ()) -> dict[str, Any]:
    """A resolved config flattened to dotted keys (``activation.beta``), top-level ``leave_out`` keys
    left out; an empty mapping (``model.kwargs: {}``) has no leaf and no key. What the report groups
    runs by, ``load_runs`` shows as ``params.*`` and the trackers log as params."""
    flat: dict[str, Any] = {}

    def walk(node: Mapping[str, Any], prefix: str) -> None:
        for key, value in node.items():
            if isinstance(value, Mapping):
                walk(value, f"{prefix}{key}.")
            else:
                flat[f"{prefix}{key}"] = value

    walk({k: v for k, v in config.items() if k not in leave_out}, "")
    return flat


def load(results_dir: Path) -> tuple[list[Record], list[str]]:
    """Every readable record under ``results_dir`` (oldest first) and why the others were skipped.

    A record that its schema cannot read (a field missing or of the wrong type, a ResNet without
    depth and version) is reported as unreadable, not guessed at.
    """
    import pandas as pd
    import yaml

    from mila_bench.records.results_md import section_name

    records, skipped = [], []
    for path in sorted(results_dir.glob("*/summary.json")) if results_dir.is_dir() else []:
        folder = path.parent
        if folder.name.startswith("."):  # a run still being written (write_run's temporary folder)
            continue
        try:
            summary = Summary.from_json(json.loads(path.read_text()))
            config = upgrade_config(read_config(folder))
            section_name(summary)
        except UnreadableRecord as err:
            skipped.append(f"{folder.name}: unreadable record ({err})")
            continue
        except (OSError, ValueError, KeyError, TypeError, yaml.YAMLError) as err:
            skipped.append(f"{folder.name}: unreadable record ({type(err).__name__})")
            continue
        settings = flat_config(config)
        metrics = pd.read_csv(folder / "metrics.csv") if (folder / "metrics.csv").is_file() else None
        records.append(Record(summary.run_id, folder, summary, settings, metrics))
    return records, skipped
