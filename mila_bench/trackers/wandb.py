"""Weights & Biases: one W&B run per record, offline by default (``wandb sync`` uploads it later).

The W&B run id is the record's run id (a hash of it where W&B would refuse its characters), so the
same record always maps to the same W&B run: a resumed run continues it, ``export`` finds it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mila_bench.records.schema import EpochMetrics, Summary
from mila_bench.trackers.base import RECORD_FILES, epoch_metrics, final_metrics, tags


def wandb_id(run_id: str) -> str:
    """The W&B run id of a record: its run id, or a stable hash of it when W&B would not take it."""
    return run_id if re.fullmatch(r"[A-Za-z0-9_-]{1,64}", run_id) else hashlib.sha1(run_id.encode()).hexdigest()[:32]


class WandbTracker:
    def __init__(self, settings: Mapping[str, Any], results_dir: Path) -> None:
        self.project = str(settings.get("project") or "mila-bench")
        self.mode = str(settings.get("mode") or "offline")
        self.entity = settings.get("entity")
        self.dir = Path(settings.get("dir") or results_dir)
        self._run = None

    @property
    def where(self) -> str:
        return str(self.dir / "wandb")

    def exists(self, run_id: str) -> bool:
        """A local run folder for it (offline-run-*-ID, or run-*-ID when it ran online)."""
        return any((self.dir / "wandb").glob(f"*run-*-{wandb_id(run_id)}"))

    def start(self, summary: Summary, params: Mapping[str, Any]) -> None:
        import wandb

        self.dir.mkdir(parents=True, exist_ok=True)
        quiet = wandb.Settings(silent=True, console="off", x_disable_stats=True)
        wandb.setup(settings=quiet)  # W&B's terminal messages follow the process-wide settings
        self._run = wandb.init(
            project=self.project,
            entity=self.entity,
            mode=self.mode,
            dir=str(self.dir),
            id=wandb_id(summary.run_id),
            name=summary.run_id,
            config=dict(params),
            tags=[f"{k}={v}"[:64] for k, v in tags(summary).items()],
            resume="allow",
            # no banners, no console capture (mila-bench prints its own lines), no system sampling thread
            settings=quiet,
        )

    def log_epoch(self, metrics: EpochMetrics) -> None:
        self._run.log(epoch_metrics(metrics), step=metrics.epoch)

    def finish(self, summary: Summary, run_dir: Path) -> None:
        """Summary = the final metrics; the record files saved with the run; a run that did not complete fails."""
        self._run.summary.update({**final_metrics(summary), "status": summary.status})
        for name in RECORD_FILES:
            if (run_dir / name).is_file():
                self._run.save(str(run_dir / name), base_path=str(run_dir), policy="now")
        self._run.finish(exit_code=0 if summary.status == "completed" else 1)
        self._run = None
