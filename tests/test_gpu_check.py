"""benchmarks/gpu_check.py's short CPU version: every part runs and reports sound numbers."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

from conftest import ROOT


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

    # Same weights and batches on the same device: the losses agree exactly, and they fall.
    for model in ("mlp", "resnet20_v1"):
        agreement = summary["agreement"][model]
        assert agreement["max_rel_diff"] == 0.0 and agreement["steps"] >= 1
        assert all(math.isfinite(v) for v in agreement["loss_cpu"])
    assert summary["agreement"]["mlp"]["loss_cpu"][-1] < summary["agreement"]["mlp"]["loss_cpu"][0]

    accuracy = summary["mila"]["accuracy"]
    assert set(accuracy) == {"eager_float32", "eager_bfloat16"} and all(a["within_tolerance"] for a in accuracy.values())
    [speed] = summary["mila"]["speed"].values()
    assert {"eager", "F.mish", "F.silu"} <= set(speed["ms"]) and speed["eager/F.mish"] > 0

    throughput = summary["throughput"]
    for variant in ("plain", "amp", "deterministic"):
        run = throughput[variant]
        assert run["images_per_s"] > 0 and len(run["epoch_seconds"]) == 2
        assert run["recipe_200_epochs_train_minutes"] == 200 * 50_000 / run["images_per_s"] / 60
    assert "--compile" in throughput["cuda_graphs"]["skipped"]
    assert throughput["deterministic_cost"]["time_ratio_vs_plain"] > 0

    resume = summary["resume"]
    assert resume["stopped_after_epoch"] == 1 and resume["same_metrics"] is True and resume["max_abs_diff"] == 0.0
