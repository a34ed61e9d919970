"""``mila-bench export TRACKER``: the finished records of a results folder backfilled into a tracker,
through the same tracker code as a live run; a run the tracker already holds is skipped, so
exporting twice creates each run once."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mila_bench.errors import UsageError


def export(name: str, settings: Mapping[str, Any], results_dir: Path) -> str:
    """Export every completed or diverged record under ``results_dir`` to tracker ``name`` with its
    ``settings`` (the composed ``logger.<name>``, as for ``train``); the line to print."""
    from mila_bench.records import runs
    from mila_bench.trackers.base import params
    from mila_bench.trackers.fanout import build

    tracker = build(name, settings, results_dir)
    records, skipped = runs.load(results_dir)
    exported = present = 0
    for record in records:
        if record.summary.status not in ("completed", "diverged"):
            continue
        try:
            if tracker.exists(record.run_id):
                present += 1
                continue
            tracker.start(record.summary, params(runs.read_config(record.folder)))
            for metrics in runs.read_metrics(record.folder):
                tracker.log_epoch(metrics)
            tracker.finish(record.summary, record.folder)
        except Exception as err:  # the tracker's (a store that cannot be reached, a refused value): one line
            why = " ".join(f"{type(err).__name__}: {err}".split())[:300]
            raise UsageError(
                f"export {name}: run {record.run_id} failed in {tracker.where} ({why}); {exported} exported "
                f"before it, {present} already there; the records are unchanged"
            ) from err
        exported += 1
    unreadable = f"; {len(skipped)} unreadable records skipped" if skipped else ""
    return f"export {name}: {exported} exported, {present} already there, in {tracker.where}{unreadable}"
