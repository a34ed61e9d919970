"""Trackers are views of the record: what MLflow, TensorBoard and W&B hold, read back through their own
readers, equals the run's record; a tracker that fails costs one warning line, never the run; export
backfills records once. Real packages, offline, on tiny real Fashion-MNIST runs."""

from __future__ import annotations

import csv
import json
import math
import struct
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, cli_env, recorded, run_cli, run_rows, snapshot
from mila_bench.config import compose
from mila_bench.errors import UsageError
from mila_bench.records import runs
from mila_bench.records.runs import Record, find_resumable
from mila_bench.report.configurations import key
from mila_bench.trackers import checks
from mila_bench.trackers.base import RECORD_FILES, params
from mila_bench.trackers.fanout import Trackers

METRICS = ("train_loss_sum", "train_loss", "test_loss", "top1", "top3", "top5", "seconds")


def tiny(fashion_root: Path, *overrides: str) -> list[str]:
    """Two epochs on 600 training images on the CPU: a few seconds, every per-epoch path taken twice."""
    return [f"dataset.root={fashion_root}", "dataset.train_subset=600", "trainer.epochs=2", "device=cpu",
            "trainer.progress=false", *overrides]  # fmt: skip


def record_of(work: Path) -> tuple[str, Path, dict, list[dict[str, str]]]:
    """The one run under ``work/results``: run id, folder, summary.json, metrics.csv rows."""
    [(run_id, summary)] = recorded(work).items()
    folder = work / "results" / run_id
    with open(folder / "metrics.csv", newline="") as f:
        return run_id, folder, summary, list(csv.DictReader(f))


def record_params(folder: Path) -> dict:
    return params(yaml.safe_load((folder / "config.yaml").read_text()))


# ---------------------------------------------------------------- config: the logger group, torch-free


def test_logger_none_by_default_and_several_at_once_each_under_its_own_key() -> None:
    assert checks.selected(compose([]).get("logger")) == []
    cfg = compose(["logger=[mlflow,tensorboard]", "logger.mlflow.experiment=mine"])
    assert checks.selected(cfg.logger) == ["mlflow", "tensorboard"]
    assert cfg.logger.mlflow.experiment == "mine" and cfg.logger.mlflow.tracking_uri is None
    assert cfg.logger.tensorboard.dir is None
    assert compose(["logger=wandb"]).logger.wandb.mode == "offline"


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["logger=nope"], "unknown logger 'nope'; allowed: mlflow, none, tensorboard, wandb"),
        (["logger=[mlflow,nope]"], "unknown logger 'nope'; allowed: mlflow, none, tensorboard, wandb"),
        (["logger=wandb", "logger.wandb.mode=sometimes"], "logger.wandb.mode='sometimes' is not allowed"),
        (["logger=mlflow", "logger.mlflow.artifacts=2"], "logger.mlflow.artifacts=2 is not allowed"),
    ],
)
def test_bad_logger_settings_are_one_usage_error(overrides: list[str], expected: str) -> None:
    with pytest.raises(UsageError, match="^" + expected.replace("[", r"\[").replace("(", r"\(")):
        compose(overrides)


def test_a_selected_tracker_without_its_package_is_one_line_at_config_time(monkeypatch: pytest.MonkeyPatch) -> None:
    real = checks.find_spec
    monkeypatch.setattr(checks, "find_spec", lambda name: None if name == "wandb" else real(name))
    with pytest.raises(UsageError) as err:
        compose(["logger=[mlflow,wandb]"])
    assert str(err.value) == "logger=wandb needs the wandb package: pip install 'mila-bench[wandb]'"
    compose(["logger=mlflow"])  # the others are unaffected


# ---------------------------------------------------------------- the logger is not part of a run's identity


def test_params_are_the_flattened_config_without_the_logger() -> None:
    config = {"seed": 1, "activation": {"name": "mila", "beta": -0.25}, "scheduler": {}, "model": {"hidden": [64, 32]},
              "logger": {"mlflow": {"experiment": "x"}}}  # fmt: skip
    assert params(config) == {"seed": 1, "activation.name": "mila", "activation.beta": -0.25, "model.hidden": [64, 32]}


def test_a_run_resumes_and_is_grouped_whatever_trackers_view_it(tmp_path: Path) -> None:
    from omegaconf import OmegaConf

    viewed = compose(["logger=[mlflow,tensorboard]", "seed=3"])
    plain = compose(["seed=3"])
    folder = tmp_path / "20260101-000000-fashion_mnist-mlp-mila-s3-abcdef"
    folder.mkdir()
    (folder / "config.yaml").write_text(OmegaConf.to_yaml(viewed, resolve=True))
    (folder / "summary.json").write_text(json.dumps({"status": "completed"}))
    assert find_resumable(tmp_path, plain) == (folder, "completed")
    assert find_resumable(tmp_path, compose(["logger=wandb", "seed=3"])) == (folder, "completed")
    assert find_resumable(tmp_path, compose(["seed=4"])) is None  # a real difference still counts

    def settings(cfg) -> dict:
        import pandas as pd

        return pd.json_normalize(OmegaConf.to_container(cfg, resolve=True), sep=".").iloc[0].to_dict()

    as_record = lambda cfg: Record("id", folder, None, settings(cfg), None)  # noqa: E731 (key reads settings only)
    assert any(k.startswith("logger.mlflow.") for k in settings(viewed))
    assert key(as_record(viewed)) == key(as_record(plain))


# ---------------------------------------------------------------- the fan-out: a failing tracker is one warning


class Recorder:
    def __init__(self, fail_at: str | None = None) -> None:
        self.calls: list[str] = []
        self.fail_at = fail_at

    def _call(self, what: str) -> None:
        if what == self.fail_at:
            raise RuntimeError("store gone")
        self.calls.append(what)

    def start(self, summary, params) -> None:
        self._call("start")

    def log_epoch(self, metrics) -> None:
        self._call(f"epoch {metrics}")

    def finish(self, summary, run_dir) -> None:
        self._call("finish")


def test_a_failing_tracker_is_one_warning_and_left_out_the_others_go_on(tmp_path: Path) -> None:
    lines: list[str] = []
    views = Trackers({}, tmp_path, warn=lines.append)
    views.active = {"mlflow": Recorder(fail_at="epoch 2"), "tensorboard": Recorder()}
    failing, other = views.active["mlflow"], views.active["tensorboard"]
    views.start(None, {})
    for epoch in (1, 2, 3):
        views.log_epoch(epoch)
    views.finish(None, tmp_path)
    assert failing.calls == ["start", "epoch 1"] and list(views.active) == ["tensorboard"]
    assert other.calls == ["start", "epoch 1", "epoch 2", "epoch 3", "finish"]
    assert lines == [
        "mila-bench: warning: tracker mlflow failed (RuntimeError: store gone); the run and its record are unaffected"
    ]


# ---------------------------------------------------------------- live runs, read back through each tracker


@pytest.fixture(scope="module")
def viewed_run(tmp_path_factory: pytest.TempPathFactory, fashion_root: Path) -> tuple[Path, subprocess.CompletedProcess]:
    """One real `mila-bench train` with all three trackers selected at once."""
    work = tmp_path_factory.mktemp("viewed")
    proc = run_cli(["train", *tiny(fashion_root, "logger=[mlflow,tensorboard,wandb]")], work)
    assert proc.returncode == 0, proc.stderr
    return work, proc


def mlflow_runs(work: Path, **search):
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{work / 'results' / 'mlflow.db'}")
    return mlflow.search_runs(experiment_names=["mila-bench"], **search)


@pytest.mark.slow
def test_a_run_with_several_trackers_prints_no_tracker_noise(viewed_run) -> None:
    work, proc = viewed_run
    assert proc.stderr == "", proc.stderr  # no MLflow INFO lines, no W&B banners or warnings
    assert proc.stdout.splitlines()[-1].startswith("run recorded in results/")
    run_id, *_ = record_of(work)
    assert run_rows(work)[0][-1] == run_id
    for store in ("mlflow.db", "mlartifacts", "tensorboard", "wandb"):  # where the docs say
        assert (work / "results" / store).exists(), store
    assert runs.load(work / "results") [1] == []  # the stores are not taken for records


@pytest.mark.slow
def test_mlflow_run_read_back_equals_the_record(viewed_run) -> None:
    from mlflow import MlflowClient

    work, _ = viewed_run
    run_id, folder, summary, rows = record_of(work)
    [found] = mlflow_runs(work).to_dict("records")
    assert found["tags.mlflow.runName"] == run_id and found["status"] == "FINISHED"
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    assert summary["environment"]["git_commit"] == commit
    assert {k: found[f"tags.{k}"] for k in ("mila_bench.run_id", "activation", "beta", "dataset", "model", "seed", "git_commit")} == {
        "mila_bench.run_id": run_id, "activation": "mila", "beta": "-0.25", "dataset": "fashion_mnist", "model": "mlp",
        "seed": "0", "git_commit": commit}  # fmt: skip
    logged = {k.removeprefix("params."): v for k, v in found.items() if k.startswith("params.")}
    assert logged == {k: str(v) for k, v in record_params(folder).items()} and "results.dir" in logged
    for name in METRICS:  # the final values...
        assert found[f"metrics.{name}"] == summary["final"][name], name
    assert found["metrics.train_seconds"] == summary["train_seconds"]
    client = MlflowClient(f"sqlite:///{work / 'results' / 'mlflow.db'}")
    for name in METRICS:  # ... and every epoch, step = epoch
        history = [(m.step, m.value) for m in client.get_metric_history(found["run_id"], name)]
        assert history == [(int(r["epoch"]), float(r[name])) for r in rows], name
    artifacts = sorted(a.path for a in client.list_artifacts(found["run_id"]))
    assert artifacts == sorted(RECORD_FILES)
    local = Path(client.download_artifacts(found["run_id"], "summary.json", str(work)))
    assert local.read_bytes() == (folder / "summary.json").read_bytes()


@pytest.mark.slow
def test_tensorboard_scalars_read_back_equal_the_record(viewed_run) -> None:
    from tbparse import SummaryReader

    work, _ = viewed_run
    run_id, folder, summary, rows = record_of(work)
    reader = SummaryReader(str(work / "results" / "tensorboard" / run_id))
    scalars = reader.scalars
    for name in METRICS:
        logged = scalars[scalars.tag == name].sort_values("step")
        assert list(logged.step) == [int(r["epoch"]) for r in rows], name
        assert list(logged.value) == pytest.approx([float(r[name]) for r in rows], rel=1e-6), name  # float32 in events
    final = scalars[scalars.tag == "hparam/top1"]
    assert list(final.value) == pytest.approx([summary["final"]["top1"]], rel=1e-6)
    hparams = dict(zip(reader.hparams.tag, reader.hparams.value))
    assert hparams["activation.name"] == "mila" and hparams["seed"] == 0
    assert set(hparams) == set(record_params(folder))


def wandb_records(run_file: Path) -> list:
    """The protobuf records of a W&B ``.wandb`` file (a LevelDB-style log: 32 KiB blocks of
    [crc32 u32, length u16, type u8] chunks; FULL=1, FIRST=2, MIDDLE=3, LAST=4), after its 7-byte header."""
    from wandb.proto import wandb_internal_pb2

    data, block = run_file.read_bytes(), 32768
    assert data[:4] == b":W&B"
    position, pending, out = 7, b"", []
    while position + 7 <= len(data):
        if block - position % block < 7:  # a block's tail too short for a chunk header is padding
            position += block - position % block
            continue
        _, length, kind = struct.unpack("<IHB", data[position : position + 7])
        if kind == 0:
            break
        pending += data[position + 7 : position + 7 + length]
        position += 7 + length
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            out.append(record)
            pending = b""
    return out


@pytest.mark.slow
def test_wandb_offline_run_directory_has_the_same_summary(viewed_run) -> None:
    work, _ = viewed_run
    run_id, folder, summary, rows = record_of(work)
    [run_dir] = (work / "results" / "wandb").glob(f"offline-run-*-{run_id}")
    records = wandb_records(run_dir / f"run-{run_id}.wandb")
    [run] = [r.run for r in records if r.WhichOneof("record_type") == "run"]
    assert run.display_name == run_id and run.run_id == run_id and "activation=mila" in run.tags
    config = {item.key: json.loads(item.value_json) for item in run.config.update if item.key != "_wandb"}
    assert config == record_params(folder)
    final: dict = {}  # the summary as W&B rebuilds it: every update applied in order
    history: dict[int, dict] = {}
    for record in records:
        kind = record.WhichOneof("record_type")
        if kind == "summary":
            for item in record.summary.update:
                final[item.key or ".".join(item.nested_key)] = json.loads(item.value_json)
        if kind == "history":
            step = {item.key or ".".join(item.nested_key): json.loads(item.value_json) for item in record.history.item}
            history[step["_step"]] = step
    for name in METRICS:
        assert final[name] == summary["final"][name], name
        assert [history[int(r["epoch"])][name] for r in rows] == [float(r[name]) for r in rows], name
    assert final["train_seconds"] == summary["train_seconds"] and final["status"] == "completed"
    for name in RECORD_FILES:  # the record files, saved with the run
        assert (run_dir / "files" / name).read_bytes() == (folder / name).read_bytes()


# ---------------------------------------------------------------- a tracker failing mid-run


@pytest.mark.slow
def test_a_tracker_raising_mid_run_leaves_the_run_and_its_record_complete(
    tmp_path: Path, fashion_root: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    from mila_bench.pipeline import train
    from mila_bench.trackers.tensorboard import TensorBoardTracker

    real = TensorBoardTracker.log_epoch

    def fails_at_epoch_2(self, metrics) -> None:
        if metrics.epoch == 2:
            raise OSError("disk full")
        real(self, metrics)

    monkeypatch.setattr(TensorBoardTracker, "log_epoch", fails_at_epoch_2)
    cfg = compose([*tiny(fashion_root, "logger=[tensorboard,mlflow]", "trainer.epochs=3"),
                   f"results.dir={tmp_path / 'results'}", f"results.markdown={tmp_path / 'Results.md'}"])  # fmt: skip
    result = train(cfg)
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert warnings == [
        "mila-bench: warning: tracker tensorboard failed (OSError: disk full); the run and its record are unaffected"
    ]
    run_id, folder, summary, rows = record_of(tmp_path)
    assert run_id == result.run_id and summary["status"] == "completed" and [r["epoch"] for r in rows] == ["1", "2", "3"]
    assert run_rows(tmp_path)[0][-1] == run_id
    [found] = mlflow_runs(tmp_path).to_dict("records")  # the other tracker saw the whole run
    assert found["status"] == "FINISHED" and found["metrics.top1"] == summary["final"]["top1"]


# ---------------------------------------------------------------- export: backfill, once


@pytest.mark.slow
def test_export_backfills_each_finished_record_once(tmp_path: Path, fashion_root: Path) -> None:
    from mlflow import MlflowClient

    for seed in (0, 1):
        proc = run_cli(["train", *tiny(fashion_root, f"seed={seed}", "trainer.epochs=1")], tmp_path)
        assert proc.returncode == 0, proc.stderr
    assert not (tmp_path / "results" / "mlflow.db").exists()  # logger=none: no tracker wrote anything
    records = recorded(tmp_path)
    where = {"mlflow": f"sqlite:///{tmp_path / 'results' / 'mlflow.db'}", "tensorboard": "results/tensorboard",
             "wandb": "results/wandb"}  # fmt: skip
    for tracker in ("mlflow", "tensorboard", "wandb"):
        first, second = (run_cli(["export", tracker], tmp_path) for _ in range(2))
        assert first.returncode == second.returncode == 0, first.stderr + second.stderr
        assert first.stdout == f"export {tracker}: 2 exported, 0 already there, in {where[tracker]}\n"
        assert second.stdout == f"export {tracker}: 0 exported, 2 already there, in {where[tracker]}\n"
        assert first.stderr == second.stderr == ""
    found = mlflow_runs(tmp_path)
    assert sorted(found["tags.mlflow.runName"]) == sorted(records)  # each once
    client = MlflowClient(f"sqlite:///{tmp_path / 'results' / 'mlflow.db'}")
    for row in found.to_dict("records"):
        summary = records[row["tags.mlflow.runName"]]
        assert row["metrics.top1"] == summary["final"]["top1"] and row["status"] == "FINISHED"
        assert len(client.get_metric_history(row["run_id"], "top1")) == 1  # one epoch, logged once
        assert {k.removeprefix("params."): v for k, v in row.items() if k.startswith("params.")} == {
            k: str(v) for k, v in record_params(tmp_path / "results" / row["tags.mlflow.runName"]).items()
        }
    assert sorted(p.name for p in (tmp_path / "results" / "tensorboard").iterdir()) == sorted(records)
    assert len(list((tmp_path / "results" / "wandb").glob("offline-run-*"))) == 2


def test_export_to_a_tracker_that_fails_is_one_line_and_changes_no_record(tmp_path: Path, committed: Path) -> None:
    """An MLflow server that cannot be reached (a closed local port): one line naming the run and the
    store, exit 2, and the records exactly as they were."""
    source = next(p.parent for p in sorted((committed / "results").glob("*/summary.json")))
    (tmp_path / "results").mkdir()
    shutil.copytree(source, tmp_path / "results" / source.name)
    before = snapshot(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "mila_bench", "export", "mlflow", "logger.mlflow.tracking_uri=http://127.0.0.1:9"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, env=cli_env(MLFLOW_HTTP_REQUEST_MAX_RETRIES="0"),
    )  # fmt: skip
    lines = proc.stderr.splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"mila-bench: error: export mlflow: run {source.name} failed in http://127.0.0.1:9 (")
    assert lines[0].endswith("0 exported before it, 0 already there; the records are unchanged")
    assert snapshot(tmp_path) == before


def test_export_of_an_unknown_tracker_is_one_line() -> None:
    with pytest.raises(UsageError, match="^unknown tracker 'nope'; allowed: mlflow, tensorboard, wandb$"):
        checks.tracker_name("nope")


# ---------------------------------------------------------------- sweeps share one MLflow store


@pytest.mark.slow
def test_a_parallel_sweep_logs_each_job_to_one_mlflow_store(tmp_path: Path, fashion_root: Path) -> None:
    args = ["sweep", *tiny(fashion_root, "trainer.epochs=1", "seed=0,1", "logger=mlflow"),
            "hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]  # fmt: skip
    proc = run_cli(args, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "warning" not in proc.stderr
    found = mlflow_runs(tmp_path)
    assert sorted(found["tags.mlflow.runName"]) == sorted(recorded(tmp_path)) and len(found) == 2
    assert set(found["status"]) == {"FINISHED"} and not any(math.isnan(v) for v in found["metrics.top1"])


@pytest.mark.slow
def test_a_diverged_run_ends_its_tracker_run_as_failed_and_resuming_with_other_trackers_is_allowed(
    tmp_path: Path, fashion_root: Path
) -> None:
    diverging = tiny(fashion_root, "optimizer=sgd", "optimizer.lr=1e10", "logger=[mlflow,tensorboard]")
    proc = run_cli(["train", *diverging], tmp_path)
    assert proc.returncode == 3
    [line] = [line for line in proc.stderr.splitlines() if line.strip()]  # no tracker warning beside it
    assert line.startswith("mila-bench: error: run diverged")
    [(run_id, summary)] = recorded(tmp_path).items()
    [found] = mlflow_runs(tmp_path).to_dict("records")
    assert summary["status"] == "diverged" and found["tags.mlflow.runName"] == run_id and found["status"] == "FAILED"
    assert any((tmp_path / "results" / "tensorboard" / run_id).glob("events.out.tfevents.*"))
    # The same config with another tracker selection is the same run: resume finds it (diverged: refused, not re-run).
    again = run_cli(["train", *tiny(fashion_root, "optimizer=sgd", "optimizer.lr=1e10", "logger=wandb",
                                    "trainer.resume=true")], tmp_path)  # fmt: skip
    assert again.returncode == 3 and f"run results/{run_id} already diverged" in again.stderr
    assert len(recorded(tmp_path)) == 1


@pytest.mark.slow
def test_an_interrupted_run_resumed_shows_each_epoch_once_in_its_trackers(
    tmp_path: Path, fashion_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C after epoch 1, then trainer.resume=true: MLflow keeps one run (FINISHED) whose history is
    the record's epochs once each, TensorBoard's scalars are the same, and W&B's offline runs of the
    two processes carry the one W&B id (``wandb sync`` joins them)."""
    from mlflow import MlflowClient
    from tbparse import SummaryReader

    from mila_bench.errors import RunInterrupted
    from mila_bench.pipeline import train
    from mila_bench.trackers.wandb import wandb_id

    monkeypatch.chdir(tmp_path)
    overrides = tiny(fashion_root, "logger=[mlflow,tensorboard,wandb]", "results.dir=results", "results.markdown=Results.md")

    def interrupt_after_epoch_1(metrics) -> None:
        if metrics.epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(RunInterrupted):
        train(compose(overrides), on_epoch=interrupt_after_epoch_1)
    [found] = mlflow_runs(tmp_path).to_dict("records")
    assert found["status"] == "KILLED"  # as the record stands: running, to be resumed
    train(compose([*overrides, "trainer.resume=true"]))

    run_id, folder, summary, rows = record_of(tmp_path)
    assert summary["status"] == "completed" and summary["resumed_from_epoch"] == [1]
    [found] = mlflow_runs(tmp_path).to_dict("records")
    assert found["status"] == "FINISHED" and found["metrics.top1"] == summary["final"]["top1"]
    client = MlflowClient(f"sqlite:///{tmp_path / 'results' / 'mlflow.db'}")
    history = [(m.step, m.value) for m in client.get_metric_history(found["run_id"], "top1")]
    assert history == [(int(r["epoch"]), float(r["top1"])) for r in rows] and len(rows) == 2
    scalars = SummaryReader(str(tmp_path / "results" / "tensorboard" / run_id)).scalars
    top1 = scalars[scalars.tag == "top1"].sort_values("step")
    assert list(top1.step) == [1, 2] and list(top1.value) == pytest.approx([float(r["top1"]) for r in rows], rel=1e-6)
    offline = sorted((tmp_path / "results" / "wandb").glob("offline-run-*"))
    assert len(offline) == 2 and all(p.name.endswith(f"-{wandb_id(run_id)}") for p in offline)
