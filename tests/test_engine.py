"""The training loop: metrics, devices, seeding and real learning on a small real subset."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from torch import nn

from mila_bench.config import compose
from mila_bench.data import Split
from mila_bench.engine import evaluate, select_device
from mila_bench.errors import UsageError
from mila_bench.pipeline import train


class FixedOutputs(nn.Module):
    """Returns preset scores, looked up by the sample index stored in the 'image'."""

    def __init__(self, scores: torch.Tensor) -> None:
        super().__init__()
        self.scores = scores

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scores[x[:, 0].long()]


def test_evaluate_top_k_and_loss_by_hand() -> None:
    scores = torch.tensor(
        [
            [5.0, 4, 3, 2, 1, 0],  # label 0: top-1 hit
            [5.0, 4, 3, 2, 1, 0],  # label 2: top-3 hit, not top-1
            [5.0, 4, 3, 2, 1, 0],  # label 4: top-5 hit only
            [5.0, 4, 3, 2, 1, 0],  # label 5: no hit
        ]
    )
    labels = torch.tensor([0, 2, 4, 5])
    split = Split(torch.arange(4).float()[:, None], labels)
    metrics = evaluate(FixedOutputs(scores), split, batch_size=3)
    assert metrics["top1"] == pytest.approx(1 / 4)
    assert metrics["top3"] == pytest.approx(2 / 4)
    assert metrics["top5"] == pytest.approx(3 / 4)
    expected_loss = nn.functional.cross_entropy(scores, labels).item()
    assert metrics["test_loss"] == pytest.approx(expected_loss, rel=1e-6)


def test_cuda_device_without_cuda_is_refused() -> None:
    if torch.cuda.is_available():
        assert select_device("cuda").type == "cuda"
    else:
        with pytest.raises(UsageError, match="CUDA is not available"):
            select_device("cuda")
    assert select_device("cpu") == torch.device("cpu")
    assert select_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")


def small_run(tmp_path: Path, fashion_root: Path, name: str, *overrides: str):
    cfg = compose(
        [
            f"dataset.root={fashion_root}", "dataset.train_subset=1000", "trainer.epochs=2", "device=cpu",
            "trainer.progress=false", f"results.dir={tmp_path / name / 'results'}",
            f"results.markdown={tmp_path / name / 'Results.md'}", *overrides,
        ]
    )  # fmt: skip
    return train(cfg)


@pytest.mark.parametrize("initialization", ["class", "sequential"])
def test_same_seed_gives_identical_metrics_on_cpu(tmp_path: Path, fashion_root: Path, initialization: str) -> None:
    first = small_run(tmp_path, fashion_root, "a", "seed=3", f"model.initialization={initialization}")
    second = small_run(tmp_path, fashion_root, "b", "seed=3", f"model.initialization={initialization}")
    other = small_run(tmp_path, fashion_root, "c", "seed=4", f"model.initialization={initialization}")
    strip = lambda h: [{k: v for k, v in m.as_dict().items() if k != "seconds"} for m in h]  # noqa: E731
    assert strip(first.history) == strip(second.history)
    assert strip(first.history) != strip(other.history)
    assert (first.run_dir / "metrics.csv").read_text().splitlines()[1].split(",")[:7] == (
        second.run_dir / "metrics.csv"
    ).read_text().splitlines()[1].split(",")[:7]


def test_training_learns_and_records_the_run(tmp_path: Path, fashion_root: Path) -> None:
    result = small_run(tmp_path, fashion_root, "learn", "activation=mila", "activation.beta=0.5")
    first, last = result.history
    assert last.train_loss < first.train_loss
    assert last.top1 > 0.5  # 10 classes: chance is 0.1; this run lands near 0.58
    assert last.top1 <= last.top3 <= last.top5 <= 1.0
    summary = json.loads((result.run_dir / "summary.json").read_text())
    assert summary["activation"] == "mila" and summary["activation_params"] == {"beta": 0.5}
    assert summary["final"]["top1"] == last.top1 and summary["status"] == "completed"
    assert "beta: 0.5" in (result.run_dir / "config.yaml").read_text()
    metrics = (result.run_dir / "metrics.csv").read_text().splitlines()
    assert metrics[0] == "epoch,train_loss_sum,train_loss,test_loss,top1,top3,top5,seconds" and len(metrics) == 3


@pytest.mark.parametrize("name", __import__("mila_bench.activations", fromlist=["available"]).available())
def test_every_registered_activation_trains(tmp_path: Path, fashion_root: Path, name: str) -> None:
    result = small_run(tmp_path, fashion_root, name, f"activation={name}", "dataset.train_subset=3000", "trainer.epochs=1")
    final = result.history[-1]
    assert all(map(math.isfinite, (final.train_loss, final.test_loss)))
    # Learned in one epoch of 3000 images: 4x chance (0.10) and well below the chance-level loss
    # ln(10). Measured: 0.49 (thresholded_relu, θ = 1, starts nearly dead after the first layer)
    # to 0.75; with 1000 images thresholded_relu stayed near chance (0.14).
    assert final.test_loss < 0.75 * math.log(10) and final.top1 > 0.4, final
    assert result.summary["activation"] == name
