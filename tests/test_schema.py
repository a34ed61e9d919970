"""The typed run record: every committed record reads through it, a broken one is refused, a written one reads back."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from mila_bench.errors import UsageError
from mila_bench.records import checkpoints, runs
from mila_bench.records.schema import (
    CHECKPOINT_VERSION, SCHEMA_VERSION, Divergence, Environment, EpochMetrics, Reproduction, Summary, Versions,
)  # fmt: skip

ENVIRONMENT = Environment(
    torch="2.14.1", cuda=None, cudnn=None, device_type="cpu", device_name=None, cpu="x86", torch_threads=2, deterministic=False
)


def example_summary(**changes: object) -> Summary:
    """A completed run's summary with every field pipeline.train fills (made-up values, real types)."""
    summary = Summary(
        run_id="20260101-000000-fashion_mnist-mlp-mila-s0-abcdef", status="completed", started="2026-01-01T00:00:00+0000",
        dataset="fashion_mnist", data={"root": "/data", "source": "torchvision"}, model="mlp", initialization="class",
        model_config={"name": "mlp", "initialization": "class"}, scheduler={"name": "none"}, amp="off", compile=False,
        deterministic=False, activation="mila", activation_params={"beta": 0.5}, learnable_beta=False, seed=0, epochs=2,
        device="cpu", versions=Versions(torch="2.14.1", python="3.11.7"), environment=ENVIRONMENT, learned={},
        parameters=235146, train_seconds=1.5, checkpoint_bytes=1000,
        final=EpochMetrics(epoch=2, train_loss_sum=300.0, train_loss=0.5, test_loss=0.45, top1=0.84, top3=0.95, top5=0.98, seconds=0.75),
    )  # fmt: skip
    return replace(summary, **changes)


def write_record(results: Path, data: dict) -> Path:
    folder = results / data["run_id"]
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(f"seed: {data.get('seed', 0)}\n")
    (folder / "summary.json").write_text(json.dumps(data, indent=2))
    return folder


def test_every_committed_record_reads_as_the_typed_record(committed: Path) -> None:
    paths = sorted((committed / "results").glob("*/summary.json"))
    records, skipped = runs.load(committed / "results")
    assert len(paths) >= 65 and skipped == [] and len(records) == len(paths)
    for record in records:
        raw = json.loads((record.folder / "summary.json").read_text())
        summary = record.summary
        assert summary.schema_version == SCHEMA_VERSION and raw.get("schema_version", 1) <= SCHEMA_VERSION
        assert summary.run_id == record.folder.name and summary.seed == raw["seed"] and summary.status == raw["status"]
        assert isinstance(summary.environment, Environment) and isinstance(summary.final, EpochMetrics)
        assert summary.final.top1 == raw["final"]["top1"] and summary.extra == {}
        # Upgraded on read, nothing lost or reordered; the file itself is not rewritten.
        written = summary.to_json()
        assert written == {**raw, "schema_version": SCHEMA_VERSION}
        assert list(written) == ["schema_version", *(k for k in raw if k != "schema_version")]
        assert runs.read_metrics(record.folder)[-1] == summary.final  # its metrics.csv reads as typed rows too


@pytest.mark.parametrize(
    ("broken", "why"),
    [
        (lambda d: d.pop("seed"), "missing seed"),
        (lambda d: d.pop("activation_params"), "missing activation_params"),
        (lambda d: d.pop("final"), "missing final"),  # completed: the row needs it
        (lambda d: d["environment"].pop("cpu"), "environment"),
        (lambda d: d.update(seed="zero"), "seed is 'zero'"),
        (lambda d: d.update(status="finished"), "status is 'finished'"),
        (lambda d: d.update(activation_params={"beta": "high"}), "activation_params.beta is 'high'"),
        (lambda d: d.update(schema_version=SCHEMA_VERSION + 1), f"schema_version {SCHEMA_VERSION + 1}"),
    ],
    ids=["seed", "activation_params", "final", "environment.cpu", "seed-type", "status", "param-type", "newer"],
)
def test_a_record_that_does_not_hold_what_the_schema_requires_is_unreadable(tmp_path: Path, broken, why: str) -> None:
    good = example_summary().to_json()
    bad = example_summary(run_id="20260101-000001-fashion_mnist-mlp-mila-s1-bad000").to_json()
    broken(bad)
    write_record(tmp_path, good), write_record(tmp_path, bad)
    records, skipped = runs.load(tmp_path)
    assert [r.run_id for r in records] == [good["run_id"]]
    [line] = skipped
    assert line.startswith(f"{bad['run_id']}: unreadable record (") and why in line, line
    with pytest.raises(UsageError, match="unreadable record"):
        runs.read_summary(tmp_path / bad["run_id"])


def test_fields_a_status_does_not_have_yet_may_be_absent(tmp_path: Path) -> None:
    unfinished = {"learned": None, "parameters": None, "train_seconds": None, "final": None, "checkpoint_bytes": None}
    running = example_summary(status="running", **unfinished)
    diverged = example_summary(run_id="20260101-000001-x", status="diverged", diverged=Divergence(epoch=1, step=7), **unfinished)
    for summary in (running, diverged):
        assert not {"final", "learned", "diverged" if summary is running else "final"} & set(summary.to_json())
        write_record(tmp_path, summary.to_json())
    records, skipped = runs.load(tmp_path)
    assert skipped == [] and [r.summary for r in records] == [running, diverged]
    assert records[1].summary.diverged.step == 7


def test_a_summary_written_and_read_back_round_trips(tmp_path: Path) -> None:
    summary = example_summary(
        activation="custom", activation_target="my_acts:serf", activation_origin="custom target", learnable_beta=True,
        learned={"activation.beta": 0.61}, process={"threads": 2, "mila_kernel": "eager"},
        reproduction=Reproduction(section="Reproduction · t", table="t", epochs=1, seeds=2, only=[], overrides=["a=1"], row="Mila"),
        resumed_from_epoch=[0, 1], resumed_environment=[ENVIRONMENT, replace(ENVIRONMENT, torch_threads=4)],
        environment=replace(ENVIRONMENT, cpu_capability="AVX2", interop_threads=2, torch_build=["BLAS_INFO=mkl"],
                            env_vars={"OMP_NUM_THREADS": "1"}),
        final=replace(example_summary().final, lr=0.1, keras_val_loss=0.6), extra={"from_a_newer_version": [1, 2]},
    )  # fmt: skip
    run_dir = runs.start_run(tmp_path, summary.run_id, "seed: 0\n", summary)
    assert runs.read_summary(run_dir) == summary
    keys = list(json.loads((run_dir / "summary.json").read_text()))
    assert keys[0] == "schema_version" and keys[-1] == "from_a_newer_version" and "diverged" not in keys
    assert keys.index("activation_target") == keys.index("activation_params") + 1  # the order records always had

    history = [replace(summary.final, epoch=1, top1=0.7, lr=0.2), summary.final, replace(summary.final, epoch=3, lr=None)]
    runs.write_metrics(run_dir, history)
    back = runs.read_metrics(run_dir)
    assert back == history and isinstance(back[0].epoch, int) and back[2].lr is None
    runs.write_metrics(run_dir, [replace(summary.final, test_loss=math.nan)])  # written empty, read back as NaN
    assert math.isnan(runs.read_metrics(run_dir)[0].test_loss)


def test_checkpoints_carry_their_version(tmp_path: Path) -> None:
    state = {"epoch": 1, "model": {"w": torch.ones(2)}, "optimizer": {}, "scheduler": None, "history": [], "rng": {}}
    path = tmp_path / "checkpoint.pt"
    checkpoints.save(path, state)
    assert torch.load(path, weights_only=True)["version"] == CHECKPOINT_VERSION
    torch.save(state, path)  # written before checkpoints had a version: version 1
    assert checkpoints.load(path)["epoch"] == 1
    torch.save({**state, "version": CHECKPOINT_VERSION + 1}, path)
    with pytest.raises(UsageError, match=f"checkpoint version {CHECKPOINT_VERSION + 1}"):
        checkpoints.load(path)


def test_old_configs_read_with_the_keys_added_since_so_new_runs_pool_with_them(tmp_path: Path, committed: Path) -> None:
    """A committed demo run (recorded before optimizer.eps was written into adam.yaml) and a new
    run of the same settings are one configuration to the report, and resume finds the old one."""
    from omegaconf import OmegaConf

    from mila_bench.config import compose
    from mila_bench.records import runs
    from mila_bench.records.schema import upgrade_config
    from mila_bench.report.configurations import key

    records, _ = runs.load(committed / "results")
    old = next(r for r in records if r.settings.get("optimizer.name") == "adam")
    raw = OmegaConf.to_container(OmegaConf.load(old.folder / "config.yaml"))
    assert "eps" not in raw["optimizer"]  # the committed file stays as it was written
    assert old.settings["optimizer.eps"] == 1e-8
    new_cfg = OmegaConf.to_container(compose([]), resolve=True)
    assert new_cfg["optimizer"]["eps"] == 1e-8 and upgrade_config(raw)["optimizer"] == new_cfg["optimizer"]
    # The same settings run today, recorded as today's config.yaml: one configuration with the old run.
    today = dict(upgrade_config(raw), optimizer=new_cfg["optimizer"])
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.yaml").write_text(OmegaConf.to_yaml(today))
    (tmp_path / "run" / "summary.json").write_text((old.folder / "summary.json").read_text())
    [new] = runs.load(tmp_path)[0]
    assert key(new) == key(old)
    # An explicit eps is never overwritten.
    assert upgrade_config({"optimizer": {"name": "adam", "eps": 1e-7}})["optimizer"]["eps"] == 1e-7
    assert upgrade_config({"optimizer": {"name": "sgd"}}) == {"optimizer": {"name": "sgd"}}
