"""Cost fields: bytes saved for backward against a count by hand; step times from the timer."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch
from torch import nn

from mila_bench.activations import get_activation
from mila_bench.training.cost import WARMUP_STEPS, StepTimer, saved_bytes_per_image

FLOAT = 4  # bytes of a float32


def mlp(activation: nn.Module) -> nn.Module:
    return nn.Sequential(nn.Linear(10, 20), activation, nn.Linear(20, 5))


def test_saved_bytes_equal_a_count_by_hand() -> None:
    x = torch.randn(8, 10)
    # Linear 1 keeps its input (the batch: not counted, the data holds it), ReLU keeps its output,
    # which is Linear 2's input too (one storage): 20 floats per image.
    assert saved_bytes_per_image(mlp(nn.ReLU()), x) == 20 * FLOAT
    # Fused Mila keeps only its input (Linear 1's output, 20 floats); Linear 2 keeps Mila's output (20).
    assert saved_bytes_per_image(mlp(get_activation("mila")), x) == 40 * FLOAT
    # Mish written out keeps every intermediate: softplus, tanh, the product's operands...
    naive = saved_bytes_per_image(mlp(_NaiveMish()), x)
    assert naive > 40 * FLOAT


class _NaiveMish(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.tanh(nn.functional.softplus(x))


def test_saved_bytes_do_not_depend_on_the_batch_size_and_leave_the_model_mode() -> None:
    model = mlp(nn.GELU()).eval()
    one, many = saved_bytes_per_image(model, torch.randn(1, 10)), saved_bytes_per_image(model, torch.randn(32, 10))
    assert one == many and not model.training


def test_step_timer_median_skips_the_warm_up() -> None:
    timer = StepTimer(torch.device("cpu"))
    timer.start()
    pauses = [0.03] * WARMUP_STEPS + [0.001] * 9
    for pause in pauses:
        time.sleep(pause)
        timer.mark()
    times = timer.epoch_times()
    assert len(times) == len(pauses) and all(t >= 1000 * p for t, p in zip(times, pauses))
    assert timer.median_ms() == pytest.approx(sorted(times[WARMUP_STEPS:])[4])
    assert timer.median_ms() < 20  # the slow warm-up steps are not in it


@pytest.mark.slow
def test_a_run_records_its_cost(tmp_path: Path, fashion_root: Path) -> None:
    import json

    from conftest import run_cli

    result = run_cli(["train", "dataset.train_subset=640", "trainer.epochs=2", "trainer.progress=false",
                      f"dataset.root={fashion_root}"], cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    [path] = list((tmp_path / "results").glob("*/summary.json"))
    cost = json.loads(path.read_text())["cost"]
    # The demo MLP with Mila, counted by hand per image: Mila keeps fc1's output (256), fc2 keeps
    # Mila's output (256), the ReLUs keep theirs (128, 64; fc3 and fc4 keep the same tensors),
    # log_softmax keeps its result (10). The input batch is the data's, not counted.
    assert cost["saved_bytes_per_image"] == (256 + 256 + 128 + 64 + 10) * FLOAT
    assert cost["step_ms"] > 0 and cost["peak_cuda_bytes"] is None
    assert cost["images_per_s"] == pytest.approx(64 * 1000 / cost["step_ms"])  # the demo's batch of 64
