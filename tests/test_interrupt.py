"""Ctrl-C during training: the run's folder and last checkpoint are kept, and the printed command resumes it."""

from __future__ import annotations

import json
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

from mila_bench.cli.app import resume_command


def test_the_resume_command_is_the_same_command_with_resume_on() -> None:
    command = resume_command(["dataset.root=/my data", "trainer.resume=false", "seed=3"])
    assert command == "mila-bench train 'dataset.root=/my data' seed=3 trainer.resume=true"


def test_sigint_keeps_the_run_and_names_the_command_that_resumes_it(tmp_path: Path, fashion_root: Path) -> None:
    args = ["dataset.train_subset=6000", "trainer.epochs=3", "device=cpu", "seed=4", "trainer.progress=false",
            "trainer.threads=1", f"dataset.root={fashion_root}"]  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "mila_bench", "train", *args], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.time() + 300
    while not list(tmp_path.glob("results/*/checkpoint.pt")) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)  # during epoch 2: epoch 1's checkpoint has just appeared
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    [run_dir] = list((tmp_path / "results").iterdir())
    [line] = [l for l in err.splitlines() if l.strip()]
    assert "Traceback" not in err and f"run folder {run_dir.relative_to(tmp_path)} " in line
    assert "checkpoint.pt, after epoch 1" in line, line  # the interrupt landed after the first checkpoint
    assert "epoch 3/3" not in out

    # Nothing half-written: the record is the running run's, up to its last checkpoint, and no row yet.
    assert sorted(p.name for p in run_dir.iterdir()) == ["checkpoint.pt", "config.yaml", "metrics.csv", "summary.json"]
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "running"
    assert len((run_dir / "metrics.csv").read_text().splitlines()) == 2  # header + epoch 1
    assert not (tmp_path / "Results.md").exists()

    command = shlex.split(line.split("resume it with: ", 1)[1])
    assert command == ["mila-bench", "train", *args, "trainer.resume=true"]
    resumed = subprocess.run([sys.executable, "-m", "mila_bench", *command[1:]], cwd=tmp_path, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["resumed_from_epoch"] == [1]
    assert summary["final"]["epoch"] == 3 and summary["final"]["top1"] > 0.7  # learned (chance is 0.1)
    assert list((tmp_path / "results").iterdir()) == [run_dir]
    assert run_dir.name in (tmp_path / "Results.md").read_text()


def test_sigint_in_demo_py_says_how_to_resume_and_that_command_finishes_the_run(tmp_path: Path, fashion_root: Path) -> None:
    from conftest import ROOT

    args = ["--epochs", "3", "--data-dir", str(fashion_root), "dataset.train_subset=6000", "trainer.progress=false",
            "trainer.threads=1"]  # fmt: skip
    proc = subprocess.Popen([sys.executable, str(ROOT / "demo.py"), *args], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.time() + 300
    while not list(tmp_path.glob("results/*/checkpoint.pt")) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in err, err
    [line] = [l for l in err.splitlines() if l.strip()]
    assert line.startswith("demo.py: interrupted; run folder results/") and "resume it with: " in line
    command = shlex.split(line.split("resume it with: ", 1)[1])
    assert command[-1] == "trainer.resume=true" and command[-1 - len(args):-1] == args
    resumed = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert "Test accuracy (top-1)" in resumed.stdout
    [run_dir] = list((tmp_path / "results").iterdir())
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "completed"
