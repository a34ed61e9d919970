"""benchmarks/gpu_check.py: its verdict, fed summaries that agree and that disagree (as the
compiled runs on torch 2.11 did), and its short CPU version: every part runs, what it reports is
checked against a recomputation here or against the other fields it was derived from, and the
verdict passes (exit code 0)."""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import gpu_check  # noqa: E402

PLAIN_LOSSES = [0.41, 0.012, 0.004]  # a run that learns the class-coloured images


def run(train_loss: list[float], top1: float, precision: str = "fp32") -> dict:
    """A throughput variant's entry as throughput_run and throughput write it (the fields the verdict reads)."""
    return {"train_loss": train_loss, "top1": [top1] * len(train_loss), "final_top1": top1, "images_per_s": 2361.0,
            "tolerance": precision}  # fmt: skip


def agreeing_summary() -> dict:
    """A CUDA summary whose every check passes, with the differences measured on the H200 on 2026-12-04."""
    resnet_cpu = [2.3 - 0.05 * i for i in range(20)]
    mlp_cpu = [2.3 * 10 ** (-i / 3.5) for i in range(20)]  # falls to ~3e-6, as there
    return {
        "device": "NVIDIA H200",
        "agreement": {
            "precision": "fp32, TF32 off",
            "mlp": {"loss_cpu": mlp_cpu, "loss_device": [v * (1 + 1.9e-3) for v in mlp_cpu], "max_rel_diff": 1.9e-3},
            "resnet20_v1": {"loss_cpu": resnet_cpu, "loss_device": [v * (1 - 1.7e-5) for v in resnet_cpu]},
        },
        "resume": {"epochs": 3, "stopped_after_epoch": 1, "same_metrics": True, "max_abs_diff": 0.0},
        "throughput": {
            "plain": run(PLAIN_LOSSES, 1.0),
            "step_graph": run([0.41, 0.012, 0.0041], 1.0),  # (the step-graph variants: not yet run on a GPU)
            "step_graph_amp": run([0.46, 0.019, 0.007], 0.997, "bf16"),
            "compile": run([0.43, 0.011, 0.0041], 1.0),  # a compiled run that learns: reduction order only
            "cuda_graphs": run([0.40, 0.013, 0.004], 0.999),
            "step_graph_compile": run([0.40, 0.0125, 0.004], 1.0),
            "amp": run([0.46, 0.018, 0.007], 0.997, "bf16"),
            "deterministic": run(PLAIN_LOSSES, 1.0),
        },
        "mila": {"accuracy": {"compiled_float32": {"value_abs": 0.0, "grad_abs": 0.0, "within_tolerance": True}}},
    }


def test_a_summary_that_agrees_passes() -> None:
    assert gpu_check.verdict(agreeing_summary()) == []


def test_a_compiled_run_at_chance_fails_naming_each_epoch_and_its_top1() -> None:
    """The issue's numbers: the compiled ResNet-20 on CUDA at ln 10 while plain learns."""
    summary = agreeing_summary()
    summary["throughput"]["compile"] = run([2.0064, 2.3025, 2.3033], 0.10)
    failures = gpu_check.verdict(summary)
    assert len(failures) == 4 and all(line.startswith("throughput.compile: ") for line in failures), failures
    assert "epoch 1 train loss 2.0064 vs plain's 0.4100" in failures[0]
    assert "epoch 3 train loss 2.3033 vs plain's 0.0040" in failures[2]
    assert "final top-1 0.1000 vs plain's 1.0000" in failures[3]


def test_the_stated_tolerances_are_the_ones_applied() -> None:
    """Just inside each tolerance passes, just outside fails: fp32 and bf16, train loss and top-1."""
    for name, precision in (("cuda_graphs", "fp32"), ("amp", "bf16")):
        tol = gpu_check.TOLERANCES["variants"][precision]
        allowed = [tol["train_loss_rel"] * v + tol["train_loss_abs"] for v in PLAIN_LOSSES]
        for factor, top1_step, expected in ((0.99, 0.99, 0), (1.01, 0.99, 3), (0.99, 1.01, 1)):
            summary = agreeing_summary()
            summary["throughput"][name] = run([v + factor * a for v, a in zip(PLAIN_LOSSES, allowed)],
                                              1.0 - top1_step * tol["top1_abs"], precision)  # fmt: skip
            failures = gpu_check.verdict(summary)
            assert len(failures) == expected and all(f.startswith(f"throughput.{name}: ") for f in failures), failures


def test_a_resume_that_differs_fails() -> None:
    summary = agreeing_summary()
    summary["resume"] |= {"same_metrics": False, "max_abs_diff": 0.0004}
    [failure] = gpu_check.verdict(summary)
    assert failure.startswith("resume: ") and "0.0004" in failure


def test_an_agreement_beyond_its_tolerance_fails_at_its_worst_step() -> None:
    summary = agreeing_summary()
    resnet = summary["agreement"]["resnet20_v1"]
    resnet["loss_device"][6] = resnet["loss_cpu"][6] * 1.01  # 1 %: beyond 5e-3 relative
    resnet["loss_device"][9] = resnet["loss_cpu"][9] * 1.02
    [failure] = gpu_check.verdict(summary)
    assert failure.startswith("agreement.resnet20_v1: step 10 loss "), failure
    summary["agreement"]["mlp"]["loss_device"][3] = float("nan")
    assert [f.split(":")[0] for f in gpu_check.verdict(summary)] == ["agreement.mlp", "agreement.resnet20_v1"]


def test_errored_and_unrun_parts_and_variants_fail_and_deliberate_skips_do_not() -> None:
    summary = agreeing_summary()
    summary["mila"] = {"error": "RuntimeError: CUDA error: an illegal memory access", "part_seconds": 3.0}
    summary["throughput"]["amp"] = {"error": "timed out after 180 s"}
    summary["throughput"]["deterministic"] = {"skipped": gpu_check.OVER_BUDGET}
    summary["throughput"]["compile"] = {"skipped": "compile variants are off on cpu (pass --compile)"}
    del summary["resume"]
    assert gpu_check.verdict(summary) == [
        "resume: missing from the summary",
        "mila: errored: RuntimeError: CUDA error: an illegal memory access",
        "throughput.amp: errored: timed out after 180 s",
        f"throughput.deterministic: did not run ({gpu_check.OVER_BUDGET})",
    ]
    summary = agreeing_summary()
    summary["mila"]["accuracy"]["compiled_bfloat16"] = {"value_abs": 0.5, "grad_abs": 0.0, "within_tolerance": False}
    summary["throughput"]["cuda_graphs"] = run(PLAIN_LOSSES[:2], 1.0)
    assert [f.split(":")[0] for f in gpu_check.verdict(summary)] == ["mila.accuracy.compiled_bfloat16", "throughput.cuda_graphs"]


def test_conclude_prints_the_whole_summary_then_the_failures_and_returns_1(tmp_path: Path, capsys) -> None:
    summary = agreeing_summary()
    summary["throughput"]["cuda_graphs"] = run([2.0064, 2.3025, 2.3033], 0.10)
    out = tmp_path / "gpu_check.json"
    assert gpu_check.conclude(summary, str(out)) == 1
    printed = capsys.readouterr()
    written = json.loads(printed.out)
    assert written == json.loads(out.read_text())
    assert written["throughput"] == summary["throughput"] and written["tolerances"] == gpu_check.TOLERANCES
    assert written["failures"] == gpu_check.verdict(summary) and len(written["failures"]) == 4
    assert printed.err.splitlines() == [f"gpu_check: FAILED {line}" for line in written["failures"]] + ["gpu_check: 4 check(s) failed"]
    assert gpu_check.conclude(agreeing_summary(), None) == 0
    printed = capsys.readouterr()
    assert json.loads(printed.out)["failures"] == [] and printed.err == "gpu_check: all checks passed\n"


def mlp_losses_by_hand(tmp_path: Path, sizes: dict) -> list[float]:
    """The MLP part of 'agreement', recomputed: the script's data, the same seeded initial weights,
    then plain (unfused) Adam and NLL on the first batches in order."""
    from gpu_check import write_fashion_mnist

    from mila_bench.activations import activation_factory
    from mila_bench.config import compose
    from mila_bench.data.load import load_dataset
    from mila_bench.models import build_model

    root = write_fashion_mnist(tmp_path / "fashion", *sizes["fashion"])
    cfg = compose([f"dataset.root={root}", "dataset.download=false", "device=cpu"])
    data = load_dataset(cfg.dataset)
    torch.manual_seed(0)
    model = build_model(cfg.model, activation_factory(cfg.activation), data.input_shape, data.num_classes)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.optimizer.lr, foreach=False)
    batch, losses = cfg.trainer.batch_size, []
    for step in range(sizes["steps"]):
        images = data.train.images[step * batch : (step + 1) * batch].float() / 255  # ToTensor's scaling
        loss = F.nll_loss(model(images), data.train.labels[step * batch : (step + 1) * batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


@pytest.mark.slow  # trains ResNet-20 through the command seven times (minutes on two cores)
def test_gpu_check_runs_its_short_cpu_version(tmp_path: Path) -> None:
    out = tmp_path / "gpu_check.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--device", "cpu", "--out", str(out), "--budget", "1500"],
        cwd=tmp_path, capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]  # the verdict: every check passed
    summary = json.loads(proc.stdout)
    assert summary == json.loads(out.read_text()) and summary["device"] == "cpu"
    assert summary["failures"] == [] and proc.stderr.splitlines()[-1] == "gpu_check: all checks passed"
    for part in ("agreement", "mila", "resume", "throughput"):
        assert "error" not in summary[part] and "skipped" not in summary[part], (part, summary[part])
    sizes = summary["sizes"]

    # agreement: on the CPU both sides are the CPU, so the losses are the same to the bit and the
    # differences derived from them are 0; the MLP's losses are what training computes (recomputed).
    # (steps: as many as asked, or the batches there are: 256 images in 64s, 32 CIFAR images in one 32)
    batches = {"mlp": math.ceil(sizes["fashion"][0] / 64), "resnet20_v1": math.ceil(sizes["train"] / 32)}
    for model, available in batches.items():
        agreement = summary["agreement"][model]
        assert agreement["loss_cpu"] == agreement["loss_device"] and len(agreement["loss_cpu"]) == agreement["steps"]
        assert agreement["steps"] == min(sizes["steps"], available)
        assert agreement["max_rel_diff"] == agreement["rel_diff_first_step"] == 0.0
    np.testing.assert_allclose(summary["agreement"]["mlp"]["loss_cpu"], mlp_losses_by_hand(tmp_path, sizes), rtol=1e-5)

    # mila: the verdict follows from the worst errors and the dtype's tolerance; speed ratios from the times
    mila = summary["mila"]
    impls = ("auto", "eager")  # auto: the kernels a run uses (Triton on CUDA; eager until it pays to compile on CPU)
    for impl in impls:
        for dtype, tolerance in (("float32", 1e-6), ("bfloat16", 1e-2)):
            accuracy = mila["accuracy"][f"{impl}_{dtype}"]
            assert accuracy["within_tolerance"] is True and max(accuracy["value_abs"], accuracy["grad_abs"]) <= tolerance
    assert set(mila["accuracy"]) == {f"{impl}_{dtype}" for impl in impls for dtype in ("float32", "bfloat16")}
    [speed] = mila["speed"].values()
    assert set(speed["ms"]) == {*impls, "F.mish", "F.silu", "F.relu"} and all(math.isfinite(v) for v in speed["ms"].values())
    for impl in impls:
        for reference in ("F.mish", "F.silu", "F.relu"):
            assert speed[f"{impl}/{reference}"] == pytest.approx(speed["ms"][impl] / speed["ms"][reference], rel=1e-12)

    # throughput: each figure from the epoch times it came from
    throughput = summary["throughput"]
    for variant in ("plain", "amp", "deterministic"):
        run = throughput[variant]
        assert len(run["epoch_seconds"]) == sizes["epochs"] == throughput["epochs"]
        assert run["images_per_s"] == pytest.approx(sizes["train"] / statistics.median(run["epoch_seconds"][1:]), rel=1e-12)
        assert run["recipe_200_epochs_train_minutes"] == pytest.approx(200 * 50_000 / run["images_per_s"] / 60, rel=1e-12)
        assert run["process_wall_s"] > sum(run["epoch_seconds"]) and 0 <= run["final_top1"] <= 1
        assert len(run["train_loss"]) == sizes["epochs"] and run["final_top1"] == run["top1"][-1]
    # amp is ignored on CPU and deterministic changes nothing there: the same numbers as plain's
    for variant in ("amp", "deterministic"):
        assert throughput[variant]["train_loss"] == throughput["plain"]["train_loss"]
    for variant in ("compile", "cuda_graphs", "step_graph_compile"):
        assert "--compile" in throughput[variant]["skipped"]
    ratio = throughput["plain"]["images_per_s"] / throughput["deterministic"]["images_per_s"]
    assert throughput["deterministic_cost"]["time_ratio_vs_plain"] == pytest.approx(ratio, rel=1e-12)
    timed = {v: throughput[v]["recipe_200_epochs_train_minutes"] for v in ("plain", "amp", "deterministic")}
    assert throughput["best"]["variant"] == min(timed, key=timed.get)

    # resume: killed after a checkpoint before the end, resumed, and the metrics equal the uninterrupted run's
    resume = summary["resume"]
    assert [resume["train_images"], resume["epochs"]] == sizes["resume"]
    assert 1 <= resume["stopped_after_epoch"] < resume["epochs"]
    assert resume["same_metrics"] is True and resume["max_abs_diff"] == 0.0
