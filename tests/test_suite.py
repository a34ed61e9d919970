"""`mila-bench suite`: tasks × activations × seeds through the sweep launcher, recorded and resumable."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

import statistics

import numpy as np
from scipy import stats

from conftest import ROOT, run_cli
from mila_bench.launch.suite import task_overrides
from mila_bench.suites import load

TINY = """\
description: two small tasks for the tests
metric: top1
common:
  - dataset.train_subset=1000
  - trainer.epochs=1
  - trainer.threads=1
  - trainer.progress=false
tasks:
  mlp: [model=mlp]
  deep_mlp: [model=deep_mlp, model.depth=3, model.width=32]
"""


@pytest.fixture()
def configs(tmp_path: Path) -> Path:
    """The project's configs plus a tiny suite, used through MILA_BENCH_CONFIG_DIR."""
    target = tmp_path / "configs"
    shutil.copytree(ROOT / "configs", target)
    (target / "suite" / "tiny.yaml").write_text(TINY)
    return target


def completed(results: Path) -> list[dict]:
    summaries = [json.loads(p.read_text()) for p in results.glob("*/summary.json")]
    return [s for s in summaries if s["status"] == "completed"]


def suite_of(results: Path, run_id: str) -> tuple[str, str]:
    import yaml

    config = yaml.safe_load((results / run_id / "config.yaml").read_text())
    return config["suite"]["name"], config["suite"]["task"]


def suite_command(fashion_root: Path, seeds: int = 2, activations: str = "relu,mila") -> list[str]:
    return ["suite", "tiny", "--activations", activations, "--seeds", str(seeds), f"dataset.root={fashion_root}"]


def test_shipped_suites_load_and_name_their_tasks() -> None:
    cpu = load("cpu_small")
    assert len(cpu.tasks) >= 4 and cpu.metric == "top1"
    assert any("model=timm" in o for overrides in cpu.tasks.values() for o in overrides)
    dubey = load("dubey_cifar")
    assert {o for o in dubey.common} >= {"optimizer.lr=0.001", "trainer.batch_size=128", "trainer.epochs=100"}
    assert len(dubey.tasks) == 12
    sweep = task_overrides(cpu, "mlp", ["mila", "relu"], 3, ["device=cpu"])
    assert "activation=mila,relu" in sweep and "seed=range(0,3)" in sweep and sweep[-1] == "device=cpu"


@pytest.mark.slow
def test_suite_runs_every_task_activation_and_seed_and_learns(
    tmp_path: Path, configs: Path, fashion_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MILA_BENCH_CONFIG_DIR", str(configs))
    result = run_cli(suite_command(fashion_root, seeds=3, activations="relu,mila,gelu"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    runs = completed(tmp_path / "results")
    assert len(runs) == 18
    keys = Counter((suite_of(tmp_path / "results", r["run_id"])[1], r["activation"], r["seed"]) for r in runs)
    assert set(keys) == {(t, a, s) for t in ("mlp", "deep_mlp") for a in ("relu", "mila", "gelu") for s in (0, 1, 2)}
    assert all(n == 1 for n in keys.values())
    assert all(r["final"]["top1"] > 0.25 for r in runs)  # 1000 images, one epoch: well above chance (0.1)
    assert "task 2/2 deep_mlp" in result.stdout

    # The report's suite section, against the statistics computed here from the records.
    report = run_cli(["report"], cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    section = (tmp_path / "Results.md").read_text().split("## Suite tiny", 1)[1].split("\n## ", 1)[0]
    by_key = {(suite_of(tmp_path / "results", r["run_id"])[1], r["activation"], r["seed"]): r for r in runs}
    mlp_mila = [100 * by_key[("mlp", "mila", s)]["final"]["top1"] for s in range(3)]
    assert f"{statistics.fmean(mlp_mila):.2f} ± {statistics.stdev(mlp_mila):.2f} (3)" in section
    names = ("gelu", "mila", "relu")
    blocks = [[by_key[(t, a, s)]["final"]["top1"] for a in names] for t in ("deep_mlp", "mlp") for s in range(3)]
    ranks = np.mean([stats.rankdata([-v for v in block]) for block in blocks], axis=0)
    for name, r in zip(names, ranks):
        assert f"| {name:<12} | {r:.2f}" in section
    assert f"Friedman p = {stats.friedmanchisquare(*np.array(blocks).T).pvalue:.3g}" in section
    assert "6 blocks (2 tasks × 3 seeds" in section
    assert (tmp_path / "results" / "figures" / "suite-tiny-cd.png").is_file() and "suite-tiny-cd.png" in section
    relu_ms = statistics.median(by_key[("mlp", "relu", s)]["cost"]["step_ms"] for s in range(3))
    mila_ms = statistics.median(by_key[("mlp", "mila", s)]["cost"]["step_ms"] for s in range(3))
    relu_b = by_key[("mlp", "relu", 0)]["cost"]["saved_bytes_per_image"]
    mila_b = by_key[("mlp", "mila", 0)]["cost"]["saved_bytes_per_image"]
    assert f"{mila_ms / relu_ms:.2f}×, {mila_b / relu_b:.2f}×" in section


@pytest.mark.slow
def test_suite_resumes_after_a_kill_and_trains_nothing_twice(
    tmp_path: Path, configs: Path, fashion_root: Path
) -> None:
    env = {**os.environ, "MILA_BENCH_CONFIG_DIR": str(configs)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mila_bench", *suite_command(fashion_root)], cwd=tmp_path, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    deadline = time.time() + 300
    while len(completed(tmp_path / "results")) < 3 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = {r["run_id"] for r in completed(tmp_path / "results")}
    assert 3 <= len(before) < 8, "the kill should land in the middle of the suite"

    again = subprocess.run(
        [sys.executable, "-m", "mila_bench", *suite_command(fashion_root)], cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    runs = completed(tmp_path / "results")
    assert len(runs) == 8 and before <= {r["run_id"] for r in runs}
    assert len(list((tmp_path / "results").glob("*/summary.json"))) == 8  # an interrupted run finished in its own folder


def test_bad_suite_input_is_one_line_and_trains_nothing(tmp_path: Path) -> None:
    for args, expected in [
        (["suite", "nope"], "unknown suite 'nope'; allowed: cpu_small, dubey_cifar"),
        (["suite", "cpu_small", "--activations", "relu,nope"], "unknown activation 'nope'"),
        (["suite", "cpu_small", "seed=3"], "override 'seed=3' is not allowed here"),
    ]:
        result = run_cli(args, cwd=tmp_path)
        assert result.returncode == 2, (args, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and expected in lines[0], lines
    assert not (tmp_path / "results").exists() and not (tmp_path / "Results.md").exists()
