"""A run is a function of its configuration: the same numbers alone, after other runs in its
process (reproduce, a basic-launcher sweep, an analysis study), and the process's settings
given back when it ends, also when it fails.

MILA_BENCH_COMPILE_AFTER_ELEMENTS is set low (:data:`SWITCH`) so that Mila's ``auto`` kernels
switch from eager to compiled in the second step of these tiny ResNet runs: where that switch
lands changes the numbers, so a run that inherited the switch from the run before differs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from conftest import run_cli

#: Elements through Mila's eager kernels before auto compiles: one ResNet-20 v1 training step
#: at batch 32 counts 12.06M, so every run below switches within its second step.
SWITCH = "15000000"
COMMON = ["dataset.verify=false", "trainer.threads=1", "trainer.progress=false", "device=cpu"]
#: The last run of `reproduce cifar10-resnet20-v1 --only mila --seeds 2 --epochs 1` (β 0.5, seed 1).
LAST = ["experiment=cifar10_resnet20_v1", "activation=mila", "activation.beta=0.5", "seed=1", "trainer.epochs=1"]


def metrics(run_dir: Path) -> list[list[str]]:
    """metrics.csv without the (timing) seconds column."""
    rows = [line.split(",") for line in (run_dir / "metrics.csv").read_text().splitlines()]
    keep = [i for i, name in enumerate(rows[0]) if name != "seconds"]
    return [[row[i] for i in keep] for row in rows]


def config_without_paths(run_dir: Path) -> list[str]:
    return [l for l in (run_dir / "config.yaml").read_text().splitlines() if not l.startswith(("  dir:", "  markdown:"))]


def summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


def find_run(results: Path, beta: float, seed: int) -> Path:
    [run_dir] = [d for d in results.iterdir() if d.is_dir() and (d / "summary.json").exists()
                 and summary(d)["seed"] == seed and summary(d)["activation_params"] == {"beta": beta}]  # fmt: skip
    return run_dir


@pytest.fixture(scope="module")
def switch_early() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MILA_BENCH_COMPILE_AFTER_ELEMENTS", SWITCH)
        yield


@pytest.fixture(scope="module")
def alone(switch_early: None, cifar_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reproduction's last config, run alone in its own process with `mila-bench train`."""
    work = tmp_path_factory.mktemp("alone")
    proc = run_cli(["train", *LAST, f"dataset.root={cifar_root}", *COMMON], work)
    assert proc.returncode == 0, proc.stderr
    [run_dir] = list((work / "results").iterdir())
    kernels = summary(run_dir)["process"]["mila_kernels"]
    assert kernels["kernels"] == ["eager", "compiled"], kernels  # the switch happened inside the run
    assert kernels["switched_to_compiled"]["epoch"] == 1 and kernels["switched_to_compiled"]["step"] == 2, kernels
    return run_dir


def test_last_run_of_a_reproduction_equals_the_same_run_alone(alone: Path, cifar_root: Path, tmp_path: Path) -> None:
    proc = run_cli(["reproduce", "cifar10-resnet20-v1", "--only", "mila", "--seeds", "2", "--epochs", "1",
                    f"dataset.root={cifar_root}", *COMMON], tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert len(list((tmp_path / "results").iterdir())) == 8  # 4 β rows × 2 seeds, in one process
    last = find_run(tmp_path / "results", 0.5, 1)
    assert config_without_paths(last) == config_without_paths(alone)
    assert metrics(last) == metrics(alone)
    assert summary(last)["process"] == summary(alone)["process"]


def test_a_run_in_a_basic_launcher_sweep_equals_the_same_run_alone(alone: Path, cifar_root: Path, tmp_path: Path) -> None:
    proc = run_cli(["sweep", *[a for a in LAST if not a.startswith("seed=")], "seed=0,1",
                    f"dataset.root={cifar_root}", *COMMON], tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    second = find_run(tmp_path / "results", 0.5, 1)  # the sweep's second job, after seed 0 in the same process
    assert config_without_paths(second) == config_without_paths(alone)
    assert metrics(second) == metrics(alone)
    assert summary(second)["process"] == summary(alone)["process"]


def test_a_run_after_an_analysis_study_in_its_process_equals_it_alone(
    alone: Path, cifar_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mila_bench.activations import fused_mila
    from mila_bench.analysis.choices import ActivationChoice
    from mila_bench.analysis.noise import noise_runs
    from mila_bench.config import compose
    from mila_bench.pipeline import train
    from mila_bench.training import run_settings

    monkeypatch.setattr(fused_mila, "COMPILE_AFTER_ELEMENTS", int(SWITCH))  # this process imported it already
    monkeypatch.chdir(tmp_path)
    overrides = ["experiment=cifar10_resnet20_v1", "trainer.epochs=1", f"dataset.root={cifar_root}", *COMMON]
    before = run_settings.capture()
    noise_runs([ActivationChoice("mila", {"beta": 0.5})], [0.0, 0.1], 1, overrides, lambda line: None)
    assert run_settings.capture().same_as(before)
    result = train(compose([*LAST, f"dataset.root={cifar_root}", *COMMON]))
    assert run_settings.capture().same_as(before)
    assert metrics(result.run_dir) == metrics(alone)


# ---------------------------------------------------------------------- the process's settings


@pytest.fixture
def fresh() -> Iterator[None]:
    """Whatever a test does to the process's settings is undone after it."""
    from mila_bench.training import run_settings

    state = run_settings.capture()
    yield
    run_settings.apply(state)


def mlp(fashion_root: Path, tmp_path: Path, *extra: str):
    from mila_bench.config import compose

    return compose(["dataset.train_subset=300", "trainer.epochs=1", f"dataset.root={fashion_root}", "device=cpu",
                    "trainer.progress=false", f"results.dir={tmp_path / 'results'}",
                    f"results.markdown={tmp_path / 'Results.md'}", *extra])  # fmt: skip


def process_values() -> dict[str, object]:
    """The process's settings read from torch and the environment themselves, not through
    ``run_settings.capture`` (a restore checked only against ``capture()`` trusts what it checks)."""
    return {
        "threads": torch.get_num_threads(),
        "deterministic": torch.are_deterministic_algorithms_enabled(),
        "warn_only": torch.is_deterministic_algorithms_warn_only_enabled(),
        # torch's new precision API (its legacy getters refuse to read a mix of old and new settings)
        "cuda.matmul.fp32_precision": torch.backends.cuda.matmul.fp32_precision,
        "mkldnn.matmul.fp32_precision": torch.backends.mkldnn.matmul.fp32_precision,
        "mkldnn.conv.fp32_precision": torch.backends.mkldnn.conv.fp32_precision,
        "cudnn.conv.fp32_precision": torch.backends.cudnn.conv.fp32_precision,
        "cudnn.benchmark": torch.backends.cudnn.benchmark,
        "cudnn.deterministic": torch.backends.cudnn.deterministic,
        "CUBLAS_WORKSPACE_CONFIG": os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
    }


def disarrange() -> dict[str, object]:
    """Settings a notebook or an earlier run might have left, none of them torch's default and each
    differing from what a run sets (cudnn.deterministic from a non-deterministic run's); returns
    them as :func:`process_values` reads them."""
    from mila_bench.training.run_settings import default_threads

    threads = 1 if default_threads() > 1 else 2
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.set_float32_matmul_precision("medium")  # bf16 matmuls in oneDNN on CPU (TF32 on CUDA)
    torch.backends.mkldnn.conv.fp32_precision = "bf16"
    torch.backends.cudnn.allow_tf32 = False  # cuDNN convolutions in full fp32
    torch.backends.cudnn.benchmark = True
    torch.backends.cudnn.deterministic = True
    os.environ["CUBLAS_WORKSPACE_CONFIG"] = ":16:8"
    expected = {
        "threads": threads, "deterministic": True, "warn_only": True, "cuda.matmul.fp32_precision": "tf32",
        "mkldnn.matmul.fp32_precision": "bf16", "mkldnn.conv.fp32_precision": "bf16", "cudnn.conv.fp32_precision": "none",
        "cudnn.benchmark": True, "cudnn.deterministic": True, "CUBLAS_WORKSPACE_CONFIG": ":16:8",
    }  # fmt: skip
    assert process_values() == expected
    return expected


def test_a_run_sets_its_settings_from_its_config_and_restores_the_process_after(
    fashion_root: Path, tmp_path: Path, fresh: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mila_bench.activations import fused_mila
    from mila_bench.pipeline import train
    from mila_bench.training import run_settings

    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    outer_kernels = fused_mila.MilaKernels("eager")
    monkeypatch.setattr(fused_mila, "_current", outer_kernels)
    default = run_settings.default_threads()
    process = disarrange()
    before = run_settings.capture()
    seen = []
    result = train(mlp(fashion_root, tmp_path, "trainer.deterministic=true"), on_epoch=lambda m: seen.append(run_settings.capture()))
    [inside] = seen
    assert inside.threads == default  # trainer.threads=null: torch's default, not what the process held
    assert inside.deterministic and not inside.deterministic_warn_only and inside.cudnn_deterministic
    assert inside.cublas_workspace == ":16:8" and not inside.cudnn_benchmark  # a value the user set is kept
    assert inside.float32_matmul_precision == "highest" and ("mkldnn.conv.fp32_precision", "none") in inside.fp32_precision
    assert inside.mila_kernels is not outer_kernels and inside.mila_kernels.impl == "auto"
    assert run_settings.capture().same_as(before)
    assert process_values() == process  # what the process held, not torch's defaults
    assert fused_mila.current() is outer_kernels
    os.environ.pop("CUBLAS_WORKSPACE_CONFIG")
    assert run_settings.for_config(mlp(fashion_root, tmp_path, "trainer.deterministic=true")).cublas_workspace == ":4096:8"
    assert outer_kernels.used == [] and outer_kernels.elements == 0  # the run's Mila work went to its own state
    assert result.summary.process == {
        "threads": default, "deterministic": True, "float32_matmul_precision": "highest", "matmul_tf32": False,
        "cudnn_tf32": True, "cudnn_benchmark": False, "cudnn_deterministic": True,
        "mila_kernels": {"impl": "auto", "kernels": ["eager"], "compile_after_elements": fused_mila.COMPILE_AFTER_ELEMENTS,
                         "switched_to_compiled": None},
    }  # fmt: skip


def test_settings_are_restored_when_the_run_fails_or_is_interrupted(fashion_root: Path, tmp_path: Path, fresh: None) -> None:
    from mila_bench.errors import RunDiverged
    from mila_bench.pipeline import train
    from mila_bench.training import run_settings

    process = disarrange()
    before = run_settings.capture()
    with pytest.raises(RunDiverged):
        train(mlp(fashion_root, tmp_path, "optimizer=sgd", "optimizer.lr=1e10", "trainer.threads=3"))
    assert run_settings.capture().same_as(before)
    assert process_values() == process

    def interrupt(_metrics) -> None:
        assert torch.get_num_threads() == 3 and not torch.are_deterministic_algorithms_enabled()
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(mlp(fashion_root, tmp_path / "second", "trainer.threads=3", "activation.impl=eager"), on_epoch=interrupt)
    assert run_settings.capture().same_as(before)
    assert process_values() == process


def test_the_precision_a_run_sets_is_torchs_default_in_a_fresh_process() -> None:
    """PRECISION / FP32_PRECISION are written down once; a fresh process says whether torch still agrees."""
    code = (
        "from mila_bench.training import run_settings as rs\n"
        "s = rs.capture()\n"
        "print(s.float32_matmul_precision, s.matmul_tf32, s.cudnn_tf32, dict(s.fp32_precision) == rs.FP32_PRECISION,"
        " s.cudnn_benchmark, s.cudnn_deterministic)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "CUBLAS_WORKSPACE_CONFIG"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.stdout.split() == ["highest", "False", "True", "True", "False", "False"], out.stderr
