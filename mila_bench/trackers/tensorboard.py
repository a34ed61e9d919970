"""TensorBoard: each run's event files in ``<dir>/<run-id>/``: one scalar per metric with step = epoch,
the flattened config as hparams with the final metrics (``hparam/<metric>``), and the tags as text."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mila_bench.records.schema import EpochMetrics, Summary
from mila_bench.trackers.base import epoch_metrics, final_metrics, tags


def log_dir(settings: Mapping[str, Any], results_dir: Path) -> Path:
    """``logger.tensorboard.dir``, by default ``<results.dir>/tensorboard``."""
    configured = settings.get("dir")
    return Path(configured) if configured else results_dir / "tensorboard"


class TensorBoardTracker:
    def __init__(self, settings: Mapping[str, Any], results_dir: Path) -> None:
        self.root = log_dir(settings, results_dir)
        self._writer = None
        self._params: dict[str, Any] = {}

    @property
    def where(self) -> str:
        return str(self.root)

    def exists(self, run_id: str) -> bool:
        return any((self.root / run_id).glob("events.out.tfevents.*"))

    def start(self, summary: Summary, params: Mapping[str, Any]) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self._writer = SummaryWriter(log_dir=str(self.root / summary.run_id))
        # hparams take numbers, strings and booleans; anything else (None, lists) as its text
        self._params = {k: v if isinstance(v, (int, float, str, bool)) else str(v) for k, v in params.items()}
        for key, value in tags(summary).items():
            self._writer.add_text(f"tags/{key}", value)

    def log_epoch(self, metrics: EpochMetrics) -> None:
        for key, value in epoch_metrics(metrics).items():
            self._writer.add_scalar(key, value, metrics.epoch)
        self._writer.flush()

    def finish(self, summary: Summary, run_dir: Path) -> None:
        """hparams with the final metrics (a run that did not complete has none: its hparams alone)."""
        from torch.utils.tensorboard.summary import hparams

        final = {f"hparam/{k}": v for k, v in final_metrics(summary).items()}
        experiment, start, end = hparams(self._params, final)
        for item in (experiment, start, end):
            self._writer.file_writer.add_summary(item)
        step = summary.final.epoch if summary.final else None
        for key, value in final.items():
            self._writer.add_scalar(key, value, step)
        self._writer.add_text("status", summary.status)
        self._writer.close()
        self._writer = None
