"""`training.estimate`: the time of planned runs from recorded step costs, said by `reproduce --list` and before
a long reproduce, suite or sweep starts. Every expected figure is computed here from records the test writes."""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import pytest

from conftest import ROOT, run_cli, snapshot
from mila_bench.config import compose
from mila_bench.training.estimate import (
    LONG_S, RESNET20_V1_CPU_IMAGES_PER_S, TIMED_MIN_STEPS, Workload, device_kind, duration, estimate, estimate_configs, long_run_line, model_items,
    recorded_steps, step_cost,
)  # fmt: skip

RESNET20 = {"name": "resnet", "depth": 20, "version": 1, "kernel_l2": 0.0001}
MLP = {"name": "mlp", "initialization": "class"}


def write_record(results: Path, name: str, dataset: str, model: dict, batch: int, step_ms: float,
                 device: str = "cpu", status: str = "completed") -> None:  # fmt: skip
    """A summary.json with what the estimate reads (other readers pass over it as unreadable)."""
    folder = results / name
    folder.mkdir(parents=True)
    summary = {
        "run_id": name, "status": status, "dataset": dataset, "model_config": model, "device": device,
        "environment": {"device_type": device, "device_name": "Test GPU" if device == "cuda" else None,
                        "cpu": "Test CPU", "torch_threads": 1},
        "cost": {"step_ms": step_ms, "images_per_s": 1000 * batch / step_ms, "saved_bytes_per_image": 1.0},
    }  # fmt: skip
    (folder / "summary.json").write_text(json.dumps(summary))
    config = {"dataset": {"name": dataset}, "model": model, "trainer": {"batch_size": batch}, "device": device}
    (folder / "config.yaml").write_text(json.dumps(config))  # JSON is YAML: what resume compares configs with


def test_similar_records_give_the_step_cost_at_the_batch_or_scaled_to_it(tmp_path: Path) -> None:
    results = tmp_path / "results"
    write_record(results, "a", "cifar10", RESNET20, 32, 100.0)
    write_record(results, "b", "cifar10", RESNET20, 32, 140.0)
    write_record(results, "c", "cifar10", RESNET20, 32, 400.0)
    write_record(results, "d", "cifar10", RESNET20, 128, 256.0)  # 2 ms per image
    write_record(results, "e", "cifar10", RESNET20, 32, 9.0, device="cuda")  # another device kind
    write_record(results, "f", "cifar100", RESNET20, 32, 9.0)  # another dataset
    write_record(results, "g", "cifar10", {**RESNET20, "depth": 56}, 32, 9.0)  # another model
    write_record(results, "h", "cifar10", RESNET20, 32, 9.0, status="running")  # unfinished: no cost yet
    steps = recorded_steps(results)
    assert len(steps) == 7

    wanted = {"name": "resnet", "depth": 20, "version": 1}  # a recipe's keys: each must be equal, others may differ
    at_32 = step_cost(Workload("cifar10", model_items(wanted), 32, 50_000, 200, "cpu"), steps)
    assert at_32 is not None and at_32.ms == 140.0 and at_32.records == 3  # the median of a, b, c
    at_64 = step_cost(Workload("cifar10", model_items(wanted), 64, 50_000, 200, "cpu"), steps)
    per_image = sorted([100 / 32, 140 / 32, 400 / 32, 256 / 128])  # a-d: the median time per image, × 64
    assert at_64 is not None and at_64.ms == pytest.approx(64 * (per_image[1] + per_image[2]) / 2)
    assert step_cost(Workload("cifar10", model_items({**wanted, "version": 2}), 32, 50_000, 1, "cpu"), steps) is None

    work = Workload("cifar10", model_items(wanted), 32, 50_000, 200, "cpu")
    found = estimate([work] * 24, steps)
    assert found is not None and found.runs == 24
    assert found.seconds == pytest.approx(24 * 200 * math.ceil(50_000 / 32) * 140.0 / 1000)
    assert "the median step of 3 recorded runs like it, 140 ms on Test CPU, 1 thread" == found.basis
    cuda = estimate([Workload("cifar10", model_items(wanted), 32, 1000, 1, "cuda")], steps)
    assert cuda is not None and cuda.seconds == pytest.approx(32 * 9.0 / 1000) and "Test GPU" in cuda.basis
    v2 = Workload("cifar100", model_items({**wanted, "depth": 56, "version": 2}), 32, 1, 1, "cpu")
    assert estimate([work, v2], steps) is None  # one kind without a record (nor a documented figure): no estimate
    v1 = Workload("cifar100", model_items({**wanted, "depth": 56}), 32, 32, 1, "cpu")  # nothing recorded either
    mixed = estimate([work, v1], steps)
    assert mixed is not None and mixed.seconds == pytest.approx(found.seconds / 24 + 32 * 1000 / RESNET20_V1_CPU_IMAGES_PER_S * 54 / 18 / 1000)
    assert mixed.basis.startswith("2 kinds of run: the median steps of 3 recorded runs like them on Test CPU, 1 thread; a rough figure")


def test_the_line_is_said_only_beyond_the_threshold_and_says_how_to_run_smaller() -> None:
    work = Workload("cifar10", model_items(RESNET20), 32, 32, 1, "cpu")  # one step per run
    steps_ms = {"just over": 1000 * (LONG_S + 60), "just under": 1000 * (LONG_S - 60)}
    over = estimate([work], [], {work.kind: _cost(steps_ms["just over"])})
    under = estimate([work], [], {work.kind: _cost(steps_ms["just under"])})
    line = long_run_line("reproduce t", over, "--seeds 1")
    assert line == "reproduce t: about 31 min of training on this cpu (1 run; from a test figure); to run it smaller: --seeds 1"
    assert long_run_line("reproduce t", under, "--seeds 1") is None
    assert long_run_line("sweep", over, "x", parallel=2) is None  # two at a time: 15.5 min
    assert long_run_line("sweep", None, "x") is None
    # kinds beyond those timed are left out: the time of the others is a lower bound, and said as one
    other = Workload("cifar10", model_items({"name": "timm", "arch": "vgg16_bn"}), 32, 32, 1, "cpu")
    assert estimate([work, other, other], [], {work.kind: _cost(steps_ms["just over"])}) is None
    partial = estimate([work, other, other], [], {work.kind: _cost(steps_ms["just over"])}, partial=True)
    assert partial is not None and (partial.seconds, partial.runs, partial.unknown) == (LONG_S + 60, 3, 2)
    assert long_run_line("suite s", partial, "--seeds 1") == (
        "suite s: at least 31 min of training on this cpu (3 runs, 2 of them not estimated (kinds not timed); "
        "from a test figure); to run it smaller: --seeds 1")  # fmt: skip
    assert [duration(s) for s in (0.2, 40, 25 * 60, 5 * 3600 + 20 * 60, 3600, 11 * 86400 + 3 * 3600, 2 * 86400)] == [
        "1 s", "40 s", "25 min", "5 h 20 min", "1 h", "11 d 3 h", "2 d"]  # fmt: skip


def _cost(ms: float):
    from mila_bench.training.estimate import StepCost

    return StepCost(ms, "a test figure")


def test_auto_is_cuda_only_where_a_gpu_is_visible(monkeypatch: pytest.MonkeyPatch) -> None:
    assert device_kind("cpu") == "cpu" and device_kind("cuda:1") == "cuda"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert device_kind("auto") == "cpu"
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    visible = Path("/dev/nvidia0").exists() or any(Path("/proc/driver/nvidia/gpus").glob("*"))
    assert device_kind("auto") == ("cuda" if visible else "cpu")


def test_no_record_times_a_few_steps_only_for_runs_long_enough(tmp_path: Path) -> None:
    results = f"results.dir={tmp_path / 'results'}"
    short = compose([results, "device=cpu", "dataset.train_subset=6400", "trainer.epochs=1", "trainer.threads=1"])
    assert math.ceil(6400 / 64) < TIMED_MIN_STEPS
    assert estimate_configs([short], time_missing=True) is None  # 100 steps: not worth timing, nothing recorded
    long = compose([results, "device=cpu", "trainer.epochs=3", "trainer.threads=1"])  # 3 × 938 steps
    found = estimate_configs([long], time_missing=True)
    assert found is not None and "3 steps timed here just now" in found.basis
    ms = float(re.search(r"(\d+) ms each", found.basis).group(1))
    assert abs(found.seconds - 3 * 938 * ms / 1000) <= 3 * 938 * 0.5 / 1000  # the basis gives the step rounded to 1 ms
    assert estimate_configs([long]) is None  # listings never time


# ---------------------------------------------------------------- through the CLI


@pytest.mark.parametrize("step_ms", [130.0, 250.0])
def test_reproduce_list_estimates_each_table_from_the_records_here(tmp_path: Path, step_ms: float) -> None:
    write_record(tmp_path / "results", "r1", "cifar10", RESNET20, 32, step_ms, device=device_kind("auto"))
    before = snapshot(tmp_path)
    proc = run_cli(["reproduce", "--list", "--seeds", "2"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    expected = duration(2 * 8 * 200 * math.ceil(50_000 / 32) * step_ms / 1000)  # 8 rows × 2 seeds, 200 epochs
    assert lines[0] == f"cifar10-resnet20-v1  (8 rows: mish, swish, relu, beta_mish, mila)  16 runs × 200 epochs: about {expected} [1]"
    assert f"  [1] the median step of 1 recorded run like it, {step_ms:.0f} ms on Test CPU, 1 thread" in lines
    # CIFAR-100 and another depth: nothing recorded, so the documented figure where it applies (v1 on CPU)
    others = [next(l for l in lines if l.startswith(f"{name} ")) for name in ("cifar100-resnet20-v1", "cifar10-resnet56-v1")]
    assert all(l.endswith("[2]" if device_kind("auto") == "cpu" else "no estimate yet") for l in others), others
    assert snapshot(tmp_path) == before  # a listing writes nothing


@pytest.mark.skipif(device_kind("auto") != "cpu", reason="the documented figure is a CPU's")
def test_reproduce_list_without_records_uses_the_documented_figure_for_v1_and_says_how_else(tmp_path: Path) -> None:
    proc = run_cli(["reproduce", "--list"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    tables = [l for l in lines if l.startswith("cifar")]
    assert len(tables) == 20
    per_image_ms = 1000 / RESNET20_V1_CPU_IMAGES_PER_S
    for line in tables:
        name, _, text = line.partition("  ")
        depth, version = map(int, re.fullmatch(r"cifar\d+-resnet(\d+)-v(\d)", name).groups())
        runs, epochs = map(int, re.search(r"(\d+) runs × (\d+) epochs", text).groups())
        if version == 2:
            assert line.endswith("no estimate yet")
        else:
            seconds = runs * epochs * math.ceil(50_000 / 32) * 32 * per_image_ms * (depth - 2) / 18 / 1000
            assert line.endswith(f"about {duration(seconds)} [1]"), line
    assert "24 runs × 200 epochs: about 11 d" in tables[0]  # 8 rows × the default 3 seeds; the "about 11 days"
    assert "  [1] a rough figure: ResNet-20 v1's 242 images/s on a 2-core CPU (docs/performance.md), scaled by batch and depth" in lines
    assert "`reproduce TABLE` times a few steps and says its estimate before it starts" in lines[-1]
    assert list(tmp_path.iterdir()) == []


def test_the_documented_figure_is_the_one_performance_md_reports() -> None:
    page = (ROOT / "docs" / "performance.md").read_text()
    assert f"training {RESNET20_V1_CPU_IMAGES_PER_S} vs" in " ".join(page.split())


def long_record(results: Path, dataset: str, model: dict, batch: int, over_s: float, steps: int) -> None:
    """A record whose step makes ``steps`` steps last ``over_s`` seconds."""
    write_record(results, f"slow-{dataset}-{model['name']}-{batch}", dataset, model, batch, 1000 * over_s / steps)


@pytest.mark.slow
@pytest.mark.parametrize("total_s", [LONG_S + 120, LONG_S - 120])
def test_a_long_sweep_says_its_time_first_and_a_short_one_says_nothing(tmp_path: Path, fashion_root: Path, total_s: float) -> None:
    # Two jobs of one step each (64 images, batch 64); the recorded step makes them last total_s in all.
    long_record(tmp_path / "results", "fashion_mnist", MLP, 64, total_s, steps=2)
    proc = run_cli(["sweep", "seed=0,1", "dataset.train_subset=64", "trainer.epochs=1", "device=cpu",
                    f"dataset.root={fashion_root}", "trainer.progress=false"], tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    said = [l for l in proc.stdout.splitlines() if "of training on this" in l]
    if total_s > LONG_S:
        assert said == [f"sweep: about {duration(total_s)} of training on this cpu (2 runs; from the median step of 1 recorded "
                        f"run like it, {500 * total_s:.0f} ms on Test CPU, 1 thread); to run it smaller: fewer values per key, "
                        "trainer.epochs=N or dataset.train_subset=N"]  # fmt: skip
        assert proc.stdout.index(said[0]) < proc.stdout.index("sweep: 2 completed")
    else:
        assert said == []


@pytest.mark.slow
def test_a_long_suite_says_its_time_once_before_its_first_task(tmp_path: Path, fashion_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    configs = tmp_path / "configs"
    shutil.copytree(ROOT / "configs", configs)
    (configs / "suite" / "two.yaml").write_text(
        "description: two one-step tasks\ncommon: [dataset.train_subset=64, trainer.epochs=1, trainer.progress=false]\n"
        "tasks:\n  mlp: [model=mlp]\n  deep: [model=deep_mlp, model.depth=3, model.width=32]\n"
    )
    work = tmp_path / "work"
    long_record(work / "results", "fashion_mnist", MLP, 64, 40 * 60, steps=1)
    long_record(work / "results", "fashion_mnist", {"name": "deep_mlp", "depth": 3, "width": 32}, 64, 20 * 60, steps=1)
    monkeypatch.setenv("MILA_BENCH_CONFIG_DIR", str(configs))
    proc = run_cli(["suite", "two", "--activations", "relu", "--seeds", "1", f"dataset.root={fashion_root}", "device=cpu"], work)
    assert proc.returncode == 0, proc.stderr
    said = [l for l in proc.stdout.splitlines() if "of training on this" in l]
    assert len(said) == 1 and said[0].startswith("suite two: about 1 h of training on this cpu (2 runs; from 2 kinds of run: ")
    assert "--seeds 1, fewer --activations" in said[0]
    assert proc.stdout.index(said[0]) < proc.stdout.index("task 1/2")


@pytest.mark.slow
def test_a_long_reproduction_says_its_time_first_under_either_spelling(tmp_path: Path, cifar_root: Path) -> None:
    long_record(tmp_path / "results", "cifar10", RESNET20, 32, 45 * 60, steps=1)
    proc = run_cli(["reproduce", "cifar10_resnet20_v1", "--only", "mish", "--seeds", "1", "--epochs", "1",
                    f"dataset.root={cifar_root}", "dataset.verify=false", "dataset.train_subset=32", "device=cpu",
                    "trainer.progress=false"], tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("reproduce cifar10-resnet20-v1: about 45 min of training on this cpu (1 run; from the median step")
    assert "--seeds 1, --epochs N, --only NAME" in lines[0]
    assert lines[1].startswith("[1/1] mish seed 0:")


@pytest.mark.slow
def test_a_long_train_says_its_time_first(tmp_path: Path, fashion_root: Path) -> None:
    long_record(tmp_path / "results", "fashion_mnist", MLP, 64, 50 * 60, steps=1)
    proc = run_cli(["train", "dataset.train_subset=64", "trainer.epochs=1", "device=cpu", f"dataset.root={fashion_root}",
                    "trainer.progress=false"], tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("train: about 50 min of training on this cpu (1 run; from the median step of 1 recorded run")
    assert lines[0].endswith("to run it smaller: trainer.epochs=N or dataset.train_subset=N")
    assert lines[1].startswith("epoch 1/1:")
