"""benchmarks/gpu_check.py's short CPU version: every part runs, and what it reports is checked
against a recomputation here or against the other fields it was derived from."""

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

pytestmark = pytest.mark.slow  # trains ResNet-20 through the command seven times (minutes on two cores)


def mlp_losses_by_hand(tmp_path: Path, sizes: dict) -> list[float]:
    """The MLP part of 'agreement', recomputed: the script's data, the same seeded initial weights,
    then plain (unfused) Adam and NLL on the first batches in order."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
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


def test_gpu_check_runs_its_short_cpu_version(tmp_path: Path) -> None:
    out = tmp_path / "gpu_check.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--device", "cpu", "--out", str(out), "--budget", "1500"],
        cwd=tmp_path, capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    assert summary == json.loads(out.read_text()) and summary["device"] == "cpu"
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
    for key, tolerance in (("eager_float32", 1e-6), ("eager_bfloat16", 1e-2)):
        accuracy = mila["accuracy"][key]
        assert accuracy["within_tolerance"] is True and max(accuracy["value_abs"], accuracy["grad_abs"]) <= tolerance
    assert set(mila["accuracy"]) == {"eager_float32", "eager_bfloat16"}
    [speed] = mila["speed"].values()
    assert set(speed["ms"]) == {"eager", "F.mish", "F.silu"} and all(math.isfinite(v) for v in speed["ms"].values())
    for reference in ("F.mish", "F.silu"):
        assert speed[f"eager/{reference}"] == pytest.approx(speed["ms"]["eager"] / speed["ms"][reference], rel=1e-12)

    # throughput: each figure from the epoch times it came from
    throughput = summary["throughput"]
    for variant in ("plain", "amp", "deterministic"):
        run = throughput[variant]
        assert len(run["epoch_seconds"]) == sizes["epochs"] == throughput["epochs"]
        assert run["images_per_s"] == pytest.approx(sizes["train"] / statistics.median(run["epoch_seconds"][1:]), rel=1e-12)
        assert run["recipe_200_epochs_train_minutes"] == pytest.approx(200 * 50_000 / run["images_per_s"] / 60, rel=1e-12)
        assert run["process_wall_s"] > sum(run["epoch_seconds"]) and 0 <= run["final_top1"] <= 1
    for variant in ("compile", "cuda_graphs", "cuda_graphs_amp"):
        assert "--compile" in throughput[variant]["skipped"]
    ratio = throughput["plain"]["images_per_s"] / throughput["deterministic"]["images_per_s"]
    assert throughput["deterministic_cost"]["time_ratio_vs_plain"] == pytest.approx(ratio, rel=1e-12)
    timed = {v: throughput[v]["recipe_200_epochs_train_minutes"] for v in ("plain", "amp", "deterministic")}
    assert throughput["best"]["variant"] == min(timed, key=timed.get)

    # resume: killed after a checkpoint before the end, resumed, and the metrics equal the uninterrupted run's
    resume = summary["resume"]
    assert resume["epochs"] == sizes["epochs"] + 1 and 1 <= resume["stopped_after_epoch"] < resume["epochs"]
    assert resume["same_metrics"] is True and resume["max_abs_diff"] == 0.0
