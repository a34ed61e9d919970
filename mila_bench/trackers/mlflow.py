"""MLflow: one MLflow run per record, in an embedded SQLite store in the results folder by default.

Runs of a sweep write to one store from several processes at once; SQLite serialises writers but
MLflow's first use of a store creates its tables, which two processes must not do together, so every
write to a SQLite store holds a file lock beside it.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from mila_bench.records.schema import EpochMetrics, Summary
from mila_bench.trackers.base import RECORD_FILES, RUN_ID_TAG, epoch_metrics, final_metrics, tags

#: How a record's status ends its MLflow run (``running`` at finish: interrupted or crashed).
STATUSES = {"completed": "FINISHED", "diverged": "FAILED", "running": "KILLED"}
BATCH = 100  # MLflow's limit of params (and tags) per log_batch


def store_uri(settings: Mapping[str, Any], results_dir: Path) -> str:
    """``logger.mlflow.tracking_uri``, by default the SQLite store ``<results.dir>/mlflow.db``."""
    uri = settings.get("tracking_uri")
    return str(uri) if uri else f"sqlite:///{(results_dir / 'mlflow.db').resolve()}"


class MlflowTracker:
    def __init__(self, settings: Mapping[str, Any], results_dir: Path) -> None:
        from filelock import FileLock

        self.uri = store_uri(settings, results_dir)
        self.experiment = str(settings.get("experiment") or "mila-bench")
        self.artifacts = bool(settings.get("artifacts", True))
        database = self.uri.removeprefix("sqlite:///") if self.uri.startswith("sqlite:///") else None
        # a local store keeps its artifacts beside it (MLflow's default is ./mlruns, wherever the run started)
        self.artifact_root = (results_dir / "mlartifacts").resolve().as_uri() if database else None
        self._lock = FileLock(f"{database}.lock") if database else contextlib.nullcontext()
        self._client = None
        self._run: str | None = None
        self._last_epoch = 0

    @property
    def where(self) -> str:
        return self.uri

    @contextlib.contextmanager
    def client(self) -> Iterator[Any]:
        """The client, under the store's lock (created on first use: that creates the store's tables)."""
        with self._lock:
            if self._client is None:
                import mlflow

                logging.getLogger("mlflow").setLevel(logging.WARNING)  # "Creating initial MLflow database tables..."
                self._client = mlflow.MlflowClient(self.uri)
            yield self._client

    def _experiment_id(self, client: Any, create: bool) -> str | None:
        experiment = client.get_experiment_by_name(self.experiment)
        if experiment is not None:
            return experiment.experiment_id
        return client.create_experiment(self.experiment, artifact_location=self.artifact_root) if create else None

    def _find(self, client: Any, run_id: str, create: bool = False) -> str | None:
        experiment = self._experiment_id(client, create)
        if experiment is None:
            return None
        found = client.search_runs([experiment], filter_string=f"tags.`{RUN_ID_TAG}` = '{run_id}'", max_results=1)
        return found[0].info.run_id if found else None

    def exists(self, run_id: str) -> bool:
        with self.client() as client:
            return self._find(client, run_id) is not None

    def start(self, summary: Summary, params: Mapping[str, Any]) -> None:
        """A new MLflow run, or (a resumed record) the one it already has, running again."""
        from mlflow.entities import Param
        from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH

        with self.client() as client:
            self._run = self._find(client, summary.run_id, create=True)
            if self._run is not None:  # params were logged when it started; a resumed run keeps them
                client.update_run(self._run, status="RUNNING")
                return
            experiment = self._experiment_id(client, create=True)
            self._run = client.create_run(experiment, run_name=summary.run_id, tags=tags(summary)).info.run_id
            items = [Param(k, str(v)[:MAX_PARAM_VAL_LENGTH]) for k, v in params.items()]
            for at in range(0, len(items), BATCH):
                client.log_batch(self._run, params=items[at : at + BATCH])

    def log_epoch(self, metrics: EpochMetrics) -> None:
        self._log(epoch_metrics(metrics), metrics.epoch)
        self._last_epoch = metrics.epoch

    def _log(self, values: Mapping[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        with self.client() as client:
            client.log_batch(self._run, metrics=[Metric(k, v, now, step) for k, v in values.items()])

    def finish(self, summary: Summary, run_dir: Path) -> None:
        """The final values the epochs did not log (time, size), the record files, and the status."""
        logged_per_epoch = set(epoch_metrics(summary.final)) if summary.final else set()
        extra = {k: v for k, v in final_metrics(summary).items() if k not in logged_per_epoch}
        if extra:
            self._log(extra, summary.final.epoch if summary.final else self._last_epoch)
        with self.client() as client:
            if self.artifacts:
                for name in RECORD_FILES:
                    if (run_dir / name).is_file():
                        client.log_artifact(self._run, str(run_dir / name))
            client.set_terminated(self._run, STATUSES.get(summary.status, "KILLED"))
        self._run = None
