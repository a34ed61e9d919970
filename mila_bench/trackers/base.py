"""What every tracker is given, the same live and in ``export``: a run's params, tags and metrics as
its record holds them, and the record files. Each tracker maps these onto its own API."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from mila_bench.records.runs import IDENTITY_IGNORES, flat_config
from mila_bench.records.schema import EpochMetrics, Summary

#: The files of a run record, logged as artifacts where the tracker has artifacts.
RECORD_FILES = ("config.yaml", "metrics.csv", "summary.json")
#: The tag that names the record a tracker's run shows (what ``export`` looks for to skip a run).
RUN_ID_TAG = "mila_bench.run_id"


class Tracker(Protocol):
    """One tracker, for one run at a time: ``start``, ``log_epoch`` per epoch, ``finish`` once."""

    @property
    def where(self) -> str:
        """Where it writes (a store URI or folder), for messages."""

    def exists(self, run_id: str) -> bool:
        """Whether this tracker already holds the run (``export`` skips it)."""

    def start(self, summary: Summary, params: Mapping[str, Any]) -> None:
        """Open the tracker's run for the record ``summary`` starts, with the run's flattened config."""

    def log_epoch(self, metrics: EpochMetrics) -> None:
        """One epoch's metrics, with step = epoch."""

    def finish(self, summary: Summary, run_dir: Path) -> None:
        """Close the run as the record ends it: its final metrics, its status, the record files."""


def params(config: Mapping[str, Any]) -> dict[str, Any]:
    """A resolved config (``config.yaml``) flattened to dotted keys, without ``logger``: where a run was
    viewed is not one of its settings, and a record exported later has the same params as one logged live."""
    return flat_config(config, leave_out=IDENTITY_IGNORES)


def tags(summary: Summary) -> dict[str, str]:
    """What runs are filtered by: the run id, activation, β, dataset, model, seed and source commit."""
    beta = summary.activation_params.get("beta")
    return {
        RUN_ID_TAG: summary.run_id,
        "activation": summary.activation,
        "beta": "none" if beta is None else f"{beta:g}",
        "dataset": summary.dataset,
        "model": summary.model,
        "seed": str(summary.seed),
        "git_commit": summary.environment.git_commit or "unknown",
    }


def epoch_metrics(metrics: EpochMetrics) -> dict[str, float]:
    """An epoch's metrics as the record has them, without the epoch itself (that is the step)."""
    return {k: float(v) for k, v in metrics.as_dict().items() if k != "epoch"}


def final_metrics(summary: Summary) -> dict[str, float]:
    """What the run ended with: its last epoch's metrics, training time and size (none for a run
    that did not complete)."""
    if summary.final is None:
        return {}
    extra = {"train_seconds": summary.train_seconds, "parameters": summary.parameters}
    return {**epoch_metrics(summary.final), **{k: float(v) for k, v in extra.items() if v is not None}}
