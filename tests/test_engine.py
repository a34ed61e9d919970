"""The training loop: metrics, devices, seeding and real learning on a small real subset."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from torch import nn

from mila_bench.config import compose
from mila_bench.data.splits import Split
from mila_bench.training.engine import evaluate, select_device
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
@pytest.mark.slow
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


@pytest.mark.slow
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
@pytest.mark.slow
def test_every_registered_activation_trains(tmp_path: Path, fashion_root: Path, name: str) -> None:
    result = small_run(tmp_path, fashion_root, name, f"activation={name}", "dataset.train_subset=3000", "trainer.epochs=1")
    final = result.history[-1]
    assert all(map(math.isfinite, (final.train_loss, final.test_loss)))
    # Learned in one epoch of 3000 images: 4x chance (0.10) and well below the chance-level loss
    # ln(10). Measured: 0.49 (thresholded_relu, θ = 1, starts nearly dead after the first layer)
    # to 0.75; with 1000 images thresholded_relu stayed near chance (0.14).
    assert final.test_loss < 0.75 * math.log(10) and final.top1 > 0.4, final
    assert result.summary.activation == name


# ------------------------------------------------------------------------------ optimizer

KERAS_ADAM = {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-7}  # keras.optimizers.Adam's defaults


def test_the_recipe_optimizer_is_built_with_keras_epsilon() -> None:
    """What build_optimizer makes of each CIFAR recipe config, not what the config says."""
    from mila_bench.models import build_model
    from mila_bench.training.build import build_optimizer

    cfg = compose(["experiment=cifar10_resnet20_v1"])
    model = build_model(cfg.model, nn.ReLU, (3, 32, 32), 10)
    optimizer = build_optimizer(cfg.optimizer, model.param_groups(cfg.optimizer.weight_decay))
    assert len(optimizer.param_groups) == 2  # kernels with the Keras L2, the rest without: both need ε
    assert all((g["lr"], g["betas"], g["eps"]) == tuple(KERAS_ADAM.values()) for g in optimizer.param_groups)
    other = build_optimizer(compose(["experiment=cifar100_resnet56_v2"]).optimizer, [nn.Parameter(torch.zeros(1))])
    assert other.param_groups[0]["eps"] == KERAS_ADAM["eps"]
    demo = build_optimizer(compose([]).optimizer, [nn.Parameter(torch.zeros(1))])
    assert demo.param_groups[0]["eps"] == 1e-8  # the PyTorch demo keeps PyTorch's


def test_a_recipe_adam_step_follows_the_update_formula_with_keras_epsilon() -> None:
    """Gradients the size of ε, where ε shapes the step: with 1e-8 instead of 1e-7 the first
    component would move about 1.8 times as far."""
    from mila_bench.training.build import build_optimizer

    start = torch.tensor([0.5, -0.25, 1.0, 0.0], dtype=torch.float64)
    grad = torch.tensor([2e-7, -5e-8, 1e-9, 0.0], dtype=torch.float64)
    weight = nn.Parameter(start.clone())
    optimizer = build_optimizer(compose(["experiment=cifar10_resnet20_v1"]).optimizer, [weight])
    weight.grad = grad.clone()
    optimizer.step()
    (beta1, beta2), lr, eps = KERAS_ADAM["betas"], KERAS_ADAM["lr"], KERAS_ADAM["eps"]
    m_hat = (1 - beta1) * grad / (1 - beta1)  # first step: moments from zero, bias-corrected
    v_hat = (1 - beta2) * grad**2 / (1 - beta2)
    expected = start - lr * m_hat / (v_hat.sqrt() + eps)
    torch.testing.assert_close(weight.detach(), expected, rtol=1e-12, atol=1e-15)


# ------------------------------------------------------------------- host reads per step

#: Every way Python code reads a tensor's value back to the host (on CUDA each one waits for the GPU).
HOST_READS = ("item", "tolist", "numpy", "__bool__", "__float__", "__int__", "__index__", "__format__", "__repr__", "__str__")


def count_host_reads(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Patch every host read of torch.Tensor with a counting wrapper; returns the live counts."""
    counts = dict.fromkeys(HOST_READS, 0)
    for name in HOST_READS:
        original = getattr(torch.Tensor, name)

        def counting(self, *args, _original=original, _name=name, **kwargs):
            counts[_name] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counting)
    return counts


def fit_counting_reads(monkeypatch: pytest.MonkeyPatch, data, epochs: int, model: nn.Module | None = None) -> int:
    from mila_bench.training.build import build_optimizer
    from mila_bench.training.engine import fit, seed_everything
    from mila_bench.models import build_model

    generator = seed_everything(0)
    cfg = compose([])
    if model is None:
        model = build_model(cfg.model, lambda: nn.ReLU(), data.input_shape, data.num_classes)
    optimizer = build_optimizer(cfg.optimizer, model.parameters())
    with monkeypatch.context() as patch:
        counts = count_host_reads(patch)
        fit(model, data, optimizer, epochs=epochs, batch_size=64, eval_batch_size=1000, generator=generator, progress=True)
    return sum(counts.values())


@pytest.mark.slow
def test_training_reads_the_device_a_constant_few_times_per_epoch(fashion_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No host read per step: the count over an epoch does not grow with its number of steps."""
    from mila_bench.data.load import load_dataset

    full = load_dataset(compose([f"dataset.root={fashion_root}"]).dataset)
    full.test = full.test.head(2000)
    reads = {}
    for steps in (10, 100):
        full_train = full.train
        full.train = full_train.head(64 * steps)
        reads[steps] = fit_counting_reads(monkeypatch, full, epochs=2)
        full.train = full_train
    assert reads[10] == reads[100] and 0 < reads[100] <= 2 * 10, reads  # goal: <= 10 per epoch, any length

    # The counter does see reads: a model that reads its input once per step is caught.
    class ReadsEachStep(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = nn.Linear(784, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if self.training and x.sum() > -1:  # a per-step bool(tensor)
                pass
            return self.linear(x.flatten(1))

    full.train = full.train.head(64 * 10)
    assert fit_counting_reads(monkeypatch, full, epochs=2, model=ReadsEachStep()) == reads[10] + 2 * 10


class NaNAtCall(nn.Module):
    """A linear model whose output is NaN on its ``bad``-th training call (1-based)."""

    def __init__(self, bad: int) -> None:
        super().__init__()
        self.linear, self.bad, self.calls = nn.Linear(4, 3), bad, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.linear(x)
        if self.training:
            self.calls += 1
            if self.calls == self.bad:
                out = out * float("nan")
        return out


@pytest.mark.parametrize(("bad", "epoch", "step"), [(5, 1, 5), (17, 2, 7), (10, 1, 10)])
def test_divergence_is_found_on_the_device_with_its_epoch_and_step(bad: int, epoch: int, step: int) -> None:
    from mila_bench.data.splits import Dataset
    from mila_bench.training.engine import Diverged, fit

    images = torch.randn(100, 4, generator=torch.Generator().manual_seed(0))
    labels = torch.arange(100) % 3
    data = Dataset("toy", Split(images, labels), Split(images, labels), num_classes=3)
    model = NaNAtCall(bad)
    with pytest.raises(Diverged) as err:
        fit(model, data, torch.optim.SGD(model.parameters(), lr=0.1), epochs=3, batch_size=10, eval_batch_size=50,
            generator=torch.Generator().manual_seed(0), progress=False)  # fmt: skip
    assert (err.value.epoch, err.value.step) == (epoch, step)
    assert len(err.value.history) == epoch - 1  # the epochs completed before; nothing of the bad one
    assert all(math.isfinite(m.train_loss) for m in err.value.history)


def test_compile_modes_and_cuda_graphs_only_on_cuda() -> None:
    from mila_bench.training.engine import compile_mode

    cpu, cuda = torch.device("cpu"), torch.device("cuda")  # a device object needs no GPU
    assert compile_mode(False, cpu) is None and compile_mode(None, cuda) is None
    assert compile_mode(True, cpu) == compile_mode(True, cuda) == "default"
    assert compile_mode("reduce-overhead", cuda) == "reduce-overhead"
    assert compile_mode("reduce-overhead", cpu) == "default"  # no CUDA graphs on CPU: the run is unaffected
    assert compile_mode("max-autotune", cpu) == "max-autotune-no-cudagraphs"
    with pytest.raises(UsageError, match="trainer.compile='fast' is not allowed; allowed: false, true, default"):
        compile_mode("fast", cpu)
    with pytest.raises(UsageError, match="trainer.compile=1 is not allowed"):
        compose(["trainer.compile=1"])
    assert compose(["trainer.compile=reduce-overhead"]).trainer.compile == "reduce-overhead"


@pytest.mark.slow
def test_a_compiled_run_learns_like_the_plain_one(tmp_path: Path, fashion_root: Path) -> None:
    """trainer.compile=true trains the same model to the same numbers (within float reassociation).
    The check that would have failed on torch 2.11, where every layer before Mila's traced
    autograd.Function got a zero gradient and a compiled ResNet ended at chance."""
    plain = small_run(tmp_path, fashion_root, "plain", "activation=mila", "seed=1")
    compiled = small_run(tmp_path, fashion_root, "compiled", "activation=mila", "seed=1", "trainer.compile=true")
    for p, c in zip(plain.history, compiled.history, strict=True):
        assert c.train_loss == pytest.approx(p.train_loss, rel=1e-3)
        assert abs(c.top1 - p.top1) <= 0.01
    assert compiled.history[-1].top1 > 0.5  # chance is 0.1
    kernels = json.loads((compiled.run_dir / "summary.json").read_text())["process"]["mila_kernels"]["kernels"]
    # training: Mila's formula inside the compiled graph (Inductor's kernel); then the eager
    # kernels once, where the finished run measures its cost on an uncompiled copy of the model
    assert kernels == ["inductor", "eager"]
