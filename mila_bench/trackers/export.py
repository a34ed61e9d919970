"""``mila-bench export TRACKER``: the finished records of a results folder backfilled into a tracker,
through the same tracker code as a live run; a run the tracker already holds is skipped, so
exporting twice creates each run once."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any


def export(name: str, settings: Mapping[str, Any], results_dir: Path) -> str:
    """Export every completed or diverged record under ``results_dir`` to tracker ``name`` with its
    ``settings`` (the composed ``logger.<name>``, as for ``train``); the line to print."""
    from omegaconf import OmegaConf

    from mila_bench.records import runs
    from mila_bench.trackers.base import params
    from mila_bench.trackers.fanout import build

    tracker = build(name, settings, results_dir)
    records, skipped = runs.load(results_dir)
    exported = present = 0
    for record in records:
        if record.summary.status not in ("completed", "diverged"):
            continue
        if tracker.exists(record.run_id):
            present += 1
            continue
        tracker.start(record.summary, params(OmegaConf.to_container(OmegaConf.load(record.folder / "config.yaml"))))
        for metrics in runs.read_metrics(record.folder):
            tracker.log_epoch(metrics)
        tracker.finish(record.summary, record.folder)
        exported += 1
    unreadable = f"; {len(skipped)} unreadable records skipped" if skipped else ""
    return f"export {name}: {exported} exported, {present} already there, in {tracker.where}{unreadable}"
