"""Packed runs end to end (packing.train_pack, hydra/launcher=packed): each member its own experiment,
recorded like a lone run; divergence, resume and fallbacks."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import cli_env, run_cli

pytestmark = pytest.mark.slow  # every test here trains real runs


def config(root: Path, where: Path, *extra: str):
    from mila_bench.config import compose

    return compose([f"results.dir={where / 'results'}", f"results.markdown={where / 'Results.md'}", "device=cpu",
                    "trainer.progress=false", *extra, f"dataset.root={root}"])  # fmt: skip


def compare(packed, lone, top1_points: float) -> list[tuple[float, float]]:
    """Each member against the same config alone: first-epoch train-loss sum (relative) and final top-1 (points)."""
    found = []
    for p, l in zip(packed, lone):
        first = abs(p.history[0].train_loss_sum - l.history[0].train_loss_sum) / abs(l.history[0].train_loss_sum)
        top1 = 100 * abs(p.summary.final.top1 - l.summary.final.top1)
        assert first <= 1e-4, (p.run_id, first)
        assert top1 <= top1_points, (p.run_id, top1)
        found.append((first, top1))
    return found


def test_demo_mlp_members_train_like_the_same_runs_alone_and_are_recorded_like_them(tmp_path: Path, fashion_root: Path) -> None:
    from mila_bench.packing import train_pack
    from mila_bench.pipeline import train

    common = ["dataset.train_subset=2000", "trainer.epochs=2"]
    members = [["seed=0", "activation.beta=-0.25"], ["seed=1", "activation.beta=0.5"], ["seed=2", "activation=relu"]]
    packed = train_pack([config(fashion_root, tmp_path / "pack", *common, *m) for m in members])
    lone = [train(config(fashion_root, tmp_path / "lone", *common, *m)) for m in members]
    compare(packed, lone, top1_points=0.3)
    assert [p.summary.final.top1 > 0.5 for p in packed] == [True] * 3  # they learned (10 classes: chance is 0.1)

    ids = {p.summary.pack.id for p in packed}
    assert len(ids) == 1 and [p.summary.pack.member for p in packed] == [0, 1, 2]
    assert all(p.summary.pack.size == 3 and p.summary.pack.step_ms > 0 for p in packed)
    for p, l in zip(packed, lone):
        on_disk = json.loads((p.run_dir / "summary.json").read_text())
        assert on_disk["status"] == "completed" and on_disk["pack"]["id"] in ids
        alone = json.loads((l.run_dir / "summary.json").read_text())
        assert set(alone) == set(on_disk) - {"pack"}  # the same record, plus which pack and member
        assert on_disk["activation_params"] == alone["activation_params"] and on_disk["seed"] == alone["seed"]
        assert (p.run_dir / "checkpoint.pt").exists() and len((p.run_dir / "metrics.csv").read_text().splitlines()) == 3
    rows = [line for line in (tmp_path / "pack" / "Results.md").read_text().splitlines() if line.startswith("| ")]
    assert sum(p.run_id in row for p in packed for row in rows) == 3


def test_resnet20_members_with_batchnorm_train_like_the_same_runs_alone(tmp_path: Path) -> None:
    from cifar_files import write_cifar10

    from mila_bench.packing import train_pack
    from mila_bench.pipeline import train

    root = write_cifar10(tmp_path / "cifar", train=320, test=200)
    common = ["experiment=cifar10_resnet20_v1", "trainer.epochs=2", "dataset.verify=false", "trainer.threads=1"]
    members = [["seed=3", "activation.beta=-0.25"], ["seed=4", "activation.beta=0.25"]]
    packed = train_pack([config(root, tmp_path / "pack", *common, *m) for m in members])
    lone = [train(config(root, tmp_path / "lone", *common, *m)) for m in members]
    compare(packed, lone, top1_points=0.3)


def test_a_diverging_member_stops_alone_and_the_others_finish(tmp_path: Path, fashion_root: Path) -> None:
    from mila_bench.errors import RunDiverged
    from mila_bench.packing import train_pack

    common = ["dataset.train_subset=1000", "trainer.epochs=2"]
    members = [["seed=0"], ["seed=1", "activation=aria2", "activation.alpha=-100"], ["seed=2"]]
    results = train_pack([config(fashion_root, tmp_path, *common, *m) for m in members])
    assert isinstance(results[1], RunDiverged)
    diverged = [d for d in (tmp_path / "results").iterdir() if "aria2" in d.name]
    summary = json.loads((diverged[0] / "summary.json").read_text())
    assert summary["status"] == "diverged" and summary["diverged"]["epoch"] == 1 and summary["pack"]["member"] == 1
    for ok in (results[0], results[2]):
        assert ok.summary.status == "completed" and len(ok.history) == 2 and ok.summary.final.top1 > 0.5
    rows = [line for line in (tmp_path / "Results.md").read_text().splitlines() if line.startswith("| ")]
    assert not any("aria2" in row for row in rows) and sum(r.run_id in row for r in (results[0], results[2]) for row in rows) == 2


SWEEP = ["seed=0,1", "activation.beta=-0.25,0.5", "dataset.train_subset=12000", "trainer.epochs=3", "device=cpu",
         "hydra/launcher=packed"]  # fmt: skip


def runs(results: Path) -> list[Path]:
    return [run for run in results.iterdir() if (run / "summary.json").exists()]  # not results/sweeps/


def metrics(results: Path) -> dict[str, list[list[str]]]:
    """Each run's metrics.csv without its seconds column, by (seed, β)."""
    found = {}
    for run in runs(results):
        summary = json.loads((run / "summary.json").read_text())
        lines = (run / "metrics.csv").read_text().splitlines()
        keep = [i for i, name in enumerate(lines[0].split(",")) if name != "seconds"]
        found[f"{summary['seed']} {summary['activation_params']}"] = [[line.split(",")[i] for i in keep] for line in lines]
    return found


def test_a_killed_pack_resumes_exactly(tmp_path: Path, fashion_root: Path) -> None:
    args = [*SWEEP, f"dataset.root={fashion_root}"]
    reference = run_cli(["sweep", *args, f"results.dir={tmp_path / 'ref'}", f"results.markdown={tmp_path / 'ref.md'}"], tmp_path)
    assert reference.returncode == 0, reference.stderr
    assert "pack of 4" in reference.stdout + reference.stderr

    work = tmp_path / "work"
    work.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "mila_bench", "sweep", *args], cwd=work, env=cli_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.time() + 300
    while len(list(work.glob("results/*/checkpoint.pt"))) < 4 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)  # every member has its epoch-1 checkpoint: the kill lands in epoch 2
    proc.wait()
    epochs = {int(re.search(r"\d+", (run / "metrics.csv").read_text().splitlines()[-1]).group()) for run in runs(work / "results")}
    assert max(epochs) < 3, "the kill should land before the pack finished"
    resumed = run_cli(["sweep", *args, "trainer.resume=true"], work)
    assert resumed.returncode == 0, resumed.stderr
    assert metrics(work / "results") == metrics(tmp_path / "ref")
    summaries = [json.loads((run / "summary.json").read_text()) for run in runs(work / "results")]
    assert all(s["status"] == "completed" and s["resumed_from_epoch"] for s in summaries)
    assert len({s["pack"]["id"] for s in summaries}) == 1  # a resumed member keeps the pack it started in


def test_jobs_that_cannot_pack_run_alone_with_the_reason(tmp_path: Path, fashion_root: Path) -> None:
    lone = run_cli(["sweep", "seed=0", "model=mlp,deep_mlp", "dataset.train_subset=500", "trainer.epochs=1", "device=cpu",
                    "hydra/launcher=packed", f"dataset.root={fashion_root}"], tmp_path)  # fmt: skip
    assert lone.returncode == 0, lone.stderr
    said = lone.stdout + lone.stderr
    assert "pack of" not in said and said.count("runs alone: no other job shares its config but for seed and activation") == 2
    assert "sweep: 2 completed, 0 failed" in lone.stdout


def test_a_timm_model_vmap_cannot_run_falls_back_with_the_reason(tmp_path: Path) -> None:
    from cifar_files import write_cifar10

    root = write_cifar10(tmp_path / "cifar", train=32, test=16)
    done = run_cli(["sweep", "seed=0,1", "dataset=cifar10", f"dataset.root={root}", "dataset.verify=false", "model=timm",
                    "model.arch=sequencer2d_s", "trainer.epochs=1", "trainer.batch_size=16", "activation=relu", "device=cpu",
                    "hydra/launcher=packed"], tmp_path, timeout=900)  # fmt: skip
    assert done.returncode == 0, done.stderr
    said = done.stdout + done.stderr
    assert said.count("runs alone: torch.func.vmap cannot run it") == 2 and "lstm" in said.lower()
    assert "sweep: 2 completed, 0 failed" in done.stdout
