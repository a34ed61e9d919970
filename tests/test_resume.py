"""Long runs: kill -9 and resume bit for bit, divergence, corrupt checkpoints, determinism."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import run_cli

pytestmark = pytest.mark.slow  # every test here trains, kills and resumes real runs

COMMON = ["dataset.train_subset=20000", "trainer.epochs=4", "device=cpu", "seed=1", "trainer.progress=false"]


def metrics_without_seconds(run_dir: Path) -> list[list[str]]:
    lines = (run_dir / "metrics.csv").read_text().splitlines()
    header = lines[0].split(",")
    keep = [i for i, name in enumerate(header) if name != "seconds"]
    return [[line.split(",")[i] for i in keep] for line in lines]


def checkpoint_epoch(run_dir: Path) -> int:
    """The epoch a killed run resumes after: its checkpoint's. (metrics.csv is written just before the
    checkpoint, so a kill between the two leaves it one epoch ahead; resuming rewrites it.)"""
    return int(torch.load(run_dir / "checkpoint.pt", weights_only=True)["epoch"])


def train_then_kill(args: list[str], work: Path, pattern: str, poll: float) -> None:
    """Start ``mila-bench train`` in ``work`` and SIGKILL it as soon as a file matching ``pattern`` appears."""
    proc = subprocess.Popen([sys.executable, "-m", "mila_bench", "train", *args], cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not list(work.glob(pattern)) and proc.poll() is None and time.time() < deadline:
        time.sleep(poll)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


def test_sigkill_then_resume_gives_the_same_metrics_bitwise(tmp_path: Path, fashion_root: Path) -> None:
    args = [*COMMON, f"dataset.root={fashion_root}"]
    reference = run_cli(["train", *args, f"results.dir={tmp_path / 'ref'}", f"results.markdown={tmp_path / 'ref.md'}"], tmp_path)
    assert reference.returncode == 0, reference.stderr
    [ref_dir] = list((tmp_path / "ref").iterdir())

    work = tmp_path / "work"
    work.mkdir()
    train_then_kill(args, work, "results/*/checkpoint.pt", poll=0.02)  # during epoch 2: epoch 1's checkpoint has just appeared
    [run_dir] = list((work / "results").iterdir())
    interrupted = json.loads((run_dir / "summary.json").read_text())
    assert interrupted["status"] == "running"
    done_before_kill = checkpoint_epoch(run_dir)
    assert 1 <= done_before_kill < 4, "the kill should land before the run finished"
    assert not (work / "Results.md").exists()  # the row is written once, at completion

    resumed = run_cli(["train", *args, "trainer.resume=true"], work)
    assert resumed.returncode == 0, resumed.stderr
    assert metrics_without_seconds(run_dir) == metrics_without_seconds(ref_dir)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["resumed_from_epoch"] == [done_before_kill]
    rows = [l for l in (work / "Results.md").read_text().splitlines() if l.startswith("| mila")]
    assert len(rows) == 1 and run_dir.name in rows[0]

    finished = (run_dir / "summary.json").read_text(), (run_dir / "metrics.csv").read_text()
    again = run_cli(["train", *args, "trainer.resume=true"], work)  # the same command once more: nothing to do
    assert again.returncode == 0, again.stderr
    assert "already complete; nothing trained" in again.stdout and "epoch" not in again.stdout
    assert ((run_dir / "summary.json").read_text(), (run_dir / "metrics.csv").read_text()) == finished
    assert [l for l in (work / "Results.md").read_text().splitlines() if l.startswith("| mila")] == rows
    assert list((work / "results").iterdir()) == [run_dir]


def test_run_killed_before_its_first_checkpoint_starts_again_in_its_folder(tmp_path: Path, fashion_root: Path) -> None:
    args = ["dataset.train_subset=6000", "trainer.epochs=2", "device=cpu", "seed=2", "trainer.progress=false",
            f"dataset.root={fashion_root}"]  # fmt: skip
    work = tmp_path / "work"
    work.mkdir()
    train_then_kill(args, work, "results/*/summary.json", poll=0.01)  # training has just started: no epoch done
    [run_dir] = list((work / "results").iterdir())
    assert not (run_dir / "checkpoint.pt").exists(), "the kill should land before the first checkpoint"

    resumed = run_cli(["train", *args, "trainer.resume=true"], work)
    assert resumed.returncode == 0, resumed.stderr
    assert list((work / "results").iterdir()) == [run_dir]  # its own folder, not a new one
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["resumed_from_epoch"] == [0]
    reference = run_cli(["train", *args, f"results.dir={tmp_path / 'ref'}", f"results.markdown={tmp_path / 'ref.md'}"], tmp_path)
    assert reference.returncode == 0, reference.stderr
    [ref_dir] = list((tmp_path / "ref").iterdir())
    assert metrics_without_seconds(run_dir) == metrics_without_seconds(ref_dir)  # the same run as a fresh one
    assert float(metrics_without_seconds(run_dir)[-1][4]) > 0.7  # top1: it learned (chance is 0.1)


def test_resume_with_no_run_starts_fresh(tmp_path: Path, fashion_root: Path) -> None:
    args = ["dataset.train_subset=300", "trainer.epochs=1", "device=cpu", f"dataset.root={fashion_root}"]
    proc = run_cli(["train", *args, "trainer.resume=true"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    [run_dir] = list((tmp_path / "results").iterdir())
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and "resumed_from_epoch" not in summary


def test_corrupt_checkpoint_is_refused_and_left_alone(tmp_path: Path, fashion_root: Path) -> None:
    run_dir = tmp_path / "results" / "20260101-000000-fashion_mnist-mlp-mila-s1-abcdef"
    run_dir.mkdir(parents=True)
    config = run_cli(["train", *COMMON, f"dataset.root={fashion_root}", "--show-config"], tmp_path).stdout
    (run_dir / "config.yaml").write_text(config)
    (run_dir / "summary.json").write_text(json.dumps({"status": "running"}))
    (run_dir / "checkpoint.pt").write_bytes(b"PK\x03\x04 this is not a checkpoint")
    before = sorted((p.name, p.read_bytes()) for p in run_dir.iterdir())
    proc = run_cli(["train", *COMMON, f"dataset.root={fashion_root}", "trainer.resume=true"], tmp_path)
    assert proc.returncode == 2
    [line] = [l for l in proc.stderr.splitlines() if l.strip()]
    assert "cannot load checkpoint" in line and "checkpoint.pt" in line and "Traceback" not in proc.stderr
    assert sorted((p.name, p.read_bytes()) for p in run_dir.iterdir()) == before
    assert not (tmp_path / "Results.md").exists()


def test_divergence_is_recorded_apart_and_gets_no_row(tmp_path: Path, fashion_root: Path) -> None:
    proc = run_cli(
        ["train", "dataset.train_subset=500", "trainer.epochs=2", f"dataset.root={fashion_root}",
         "optimizer=sgd", "optimizer.lr=1e10", "device=cpu", "trainer.progress=false"],
        tmp_path,
    )  # fmt: skip
    assert proc.returncode == 3
    [line] = [l for l in proc.stderr.splitlines() if l.strip()]
    assert "run diverged: non-finite training loss at epoch 1, step" in line
    [run_dir] = list((tmp_path / "results").iterdir())
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "diverged" and summary["diverged"]["epoch"] == 1 and summary["diverged"]["step"] >= 1
    assert not (tmp_path / "Results.md").exists()


def test_deterministic_switch_is_applied_during_the_run_recorded_and_undone_after(tmp_path: Path, fashion_root: Path) -> None:
    code = (
        "import sys, torch\n"
        "from mila_bench.config import compose\n"
        "from mila_bench.pipeline import train\n"
        "during = []\n"
        "r = train(compose(sys.argv[1:]), on_epoch=lambda m: during.append(torch.are_deterministic_algorithms_enabled()))\n"
        "print(during[0], r.summary.deterministic, r.summary.process['deterministic'], torch.are_deterministic_algorithms_enabled())\n"
    )
    args = ["dataset.train_subset=300", "trainer.epochs=1", f"dataset.root={fashion_root}", "device=cpu", "trainer.progress=false"]
    on = subprocess.run([sys.executable, "-c", code, *args, "trainer.deterministic=true"], cwd=tmp_path, capture_output=True, text=True)
    off = subprocess.run([sys.executable, "-c", code, *args], cwd=tmp_path, capture_output=True, text=True)
    assert on.stdout.split() == ["True", "True", "True", "False"], on.stderr
    assert off.stdout.split() == ["False", "False", "False", "False"], off.stderr


@pytest.fixture(scope="module")
def cifar_160(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """CIFAR-10 in its real format, 160 training images: 5 steps of batch 32 per epoch."""
    from cifar_files import write_cifar10

    return write_cifar10(tmp_path_factory.mktemp("cifar_160"), train=160, test=32)


@pytest.mark.parametrize("activation", ["mila", "relu"])
def test_resnet_sigkill_then_resume_gives_the_same_metrics_bitwise(
    activation: str, tmp_path: Path, cifar_160: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ResNet-20 v1 (the recipe's model, schedule and augmentation). With Mila's auto kernels
    switching to compiled in epoch 1's third step (12.06M elements a step), the resumed run must
    use them from its first step, as the uninterrupted one does."""
    monkeypatch.setenv("MILA_BENCH_COMPILE_AFTER_ELEMENTS", "30000000")
    args = ["experiment=cifar10_resnet20_v1", f"activation={activation}", "trainer.epochs=2", "seed=3",
            f"dataset.root={cifar_160}", "dataset.verify=false", "trainer.threads=1", "trainer.progress=false", "device=cpu"]  # fmt: skip
    reference = run_cli(["train", *args], tmp_path)
    assert reference.returncode == 0, reference.stderr
    [ref_dir] = list((tmp_path / "results").iterdir())

    work = tmp_path / "work"
    work.mkdir()
    train_then_kill(args, work, "results/*/checkpoint.pt", poll=0.02)
    [run_dir] = list((work / "results").iterdir())
    assert checkpoint_epoch(run_dir) == 1, "the kill should land during epoch 2"
    resumed = run_cli(["train", *args, "trainer.resume=true"], work)
    assert resumed.returncode == 0, resumed.stderr
    assert metrics_without_seconds(run_dir) == metrics_without_seconds(ref_dir)
    summary, ref_summary = (json.loads((d / "summary.json").read_text()) for d in (run_dir, ref_dir))
    assert summary["resumed_from_epoch"] == [1]
    assert summary["process"]["mila_kernels"] == ref_summary["process"]["mila_kernels"]
    if activation == "mila":
        switched = ref_summary["process"]["mila_kernels"]["switched_to_compiled"]
        assert (switched["epoch"], switched["step"]) == (1, 3) and switched["elements"] >= 30_000_000
    else:
        assert ref_summary["process"]["mila_kernels"]["kernels"] == []
