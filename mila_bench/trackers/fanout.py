"""The selected trackers of one run, each called after the record has been written, never in its way.

The record is the source of truth: a tracker that raises costs one warning line on stderr and is
left out for the rest of the run; the run, its record and the other trackers go on.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from mila_bench.records.schema import EpochMetrics, Summary
from mila_bench.trackers.base import Tracker


def build(name: str, settings: Mapping[str, Any], results_dir: Path) -> Tracker:
    """The tracker ``logger=name`` selects, with its settings (the package is imported when it is used)."""
    if name == "mlflow":
        from mila_bench.trackers.mlflow import MlflowTracker

        return MlflowTracker(settings, results_dir)
    if name == "tensorboard":
        from mila_bench.trackers.tensorboard import TensorBoardTracker

        return TensorBoardTracker(settings, results_dir)
    from mila_bench.trackers.wandb import WandbTracker

    return WandbTracker(settings, results_dir)


def warn(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class Trackers:
    """Fan-out to the selected trackers; every call is guarded (see the module's docstring)."""

    def __init__(self, logger: Mapping[str, Any] | None, results_dir: Path, warn: Callable[[str], None] = warn) -> None:
        self.warn = warn
        self.active: dict[str, Tracker] = {}
        for name, settings in (logger or {}).items():
            self._guarded(name, lambda: self.active.__setitem__(name, build(name, settings, results_dir)))

    def start(self, summary: Summary, params: Mapping[str, Any]) -> None:
        self._each("start", summary, params)

    def log_epoch(self, metrics: EpochMetrics) -> None:
        self._each("log_epoch", metrics)

    def finish(self, summary: Summary, run_dir: Path) -> None:
        self._each("finish", summary, run_dir)

    def _each(self, method: str, *args: Any) -> None:
        for name, tracker in list(self.active.items()):
            self._guarded(name, lambda: getattr(tracker, method)(*args))

    def _guarded(self, name: str, call: Callable[[], object]) -> None:
        try:
            call()
        except Exception as err:  # any tracker failure, by design: the record must not depend on a view
            self.active.pop(name, None)
            why = " ".join(f"{type(err).__name__}: {err}".split())
            self.warn(f"mila-bench: warning: tracker {name} failed ({why[:300]}); the run and its record are unaffected")
