"""``mila-bench export TRACKER``: the finished records of a results folder backfilled into a tracker,
through the same tracker code as a live run; a run the tracker already holds is skipped, so
exporting twice creates each run once."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mila_bench.errors import unknown_name
from mila_bench.trackers.checks import PACKAGES


def export(name: str, results_dir: Path, overrides: Sequence[str] = ()) -> str:
    """Export every completed or diverged record under ``results_dir`` to tracker ``name``; the line to print.

    ``overrides`` set the tracker's settings as for ``train`` (``logger.mlflow.tracking_uri=...``).
    """
    if name not in PACKAGES:
        raise unknown_name("tracker", name, PACKAGES)
    from omegaconf import OmegaConf

    from mila_bench.config import compose
    from mila_bench.records import runs
    from mila_bench.trackers.base import params
    from mila_bench.trackers.fanout import build

    cfg = compose([f"logger=[{name}]", *overrides])  # the tracker's settings, checked as for train
    tracker = build(name, cfg.logger[name], results_dir)
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
