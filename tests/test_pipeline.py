"""One run end to end: the model that `train` really trains is the configured one, and its settings apply.

These tests look at what the run did, not at what it recorded: a run that trained ReLU, or
ignored β, α or θ, or ``trainer.threads``, while writing the configured values into its
summary.json must fail here.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from mila_bench.activations import Activation
from mila_bench.records.schema import SCHEMA_VERSION
from mila_bench.config import compose
from mila_bench.pipeline import train
from conftest import cli_env

# float64 formulas written here, independently of the registry's code.
REFERENCE = {
    "mila": lambda x, beta: x * np.tanh(np.logaddexp(0.0, x + beta)),
    "swish": lambda x: x / (1.0 + np.exp(-x)),
    "aria2": lambda x, beta, alpha: x * (1.0 + np.exp(-beta * x)) ** (-alpha),
    "leaky_relu": lambda x, alpha: np.where(x > 0, x, alpha * x),
    "thresholded_relu": lambda x, theta: np.where(x > theta, x, 0.0),
}
PROBE = np.linspace(-4.0, 4.0, 161)


@pytest.fixture
def threads_restored():
    """Runs set torch's process-wide thread count; put it back for the tests that follow."""
    before = torch.get_num_threads()
    yield before
    torch.set_num_threads(before)


def run(tmp_path: Path, fashion_root: Path, name: str, *overrides: str, subset: int = 600, on_epoch=None):
    cfg = compose(
        [f"dataset.root={fashion_root}", f"dataset.train_subset={subset}", "trainer.epochs=1", "device=cpu",
         "trainer.progress=false", f"results.dir={tmp_path / name / 'results'}",
         f"results.markdown={tmp_path / name / 'Results.md'}", *overrides]
    )  # fmt: skip
    return train(cfg, on_epoch)


def activation_modules(model: nn.Module) -> list[Activation]:
    return [m for m in model.modules() if isinstance(m, Activation)]


@pytest.mark.parametrize(
    ("overrides", "name", "params", "count"),
    [
        (["activation=mila", "activation.beta=0.5"], "mila", {"beta": 0.5}, 1),
        (["activation=mila", "activation.beta=1", "model.initialization=sequential"], "mila", {"beta": 1.0}, 1),
        (["activation=aria2", "activation.beta=2", "activation.alpha=0.5"], "aria2", {"beta": 2.0, "alpha": 0.5}, 1),
        (["activation=leaky_relu", "activation.alpha=0.05"], "leaky_relu", {"alpha": 0.05}, 1),
        (["activation=thresholded_relu", "activation.theta=-0.5"], "thresholded_relu", {"theta": -0.5}, 1),
        (["activation=swish", "model=deep_mlp", "model.depth=3", "model.width=32"], "swish", {}, 3),
    ],
    ids=["mila-class", "mila-sequential", "aria2", "leaky_relu", "thresholded_relu", "swish-deep_mlp"],
)
@pytest.mark.slow
def test_the_trained_model_computes_the_configured_activation(
    tmp_path: Path, fashion_root: Path, overrides: list[str], name: str, params: dict[str, float], count: int
) -> None:
    result = run(tmp_path, fashion_root, name, *overrides)
    model = result.model
    assert result.summary.activation == name and result.summary.activation_params == params
    acts = activation_modules(model)
    assert len(acts) == count and all(a.name == name and a.params == params for a in acts)
    assert not any(isinstance(m, (nn.SiLU, nn.Mish, nn.GELU, nn.LeakyReLU)) for m in model.modules())
    # What each module computes, against the formula with the configured parameters...
    x = torch.from_numpy(PROBE).float()
    for act in acts:
        np.testing.assert_allclose(act(x).double().numpy(), REFERENCE[name](PROBE, **params), rtol=1e-5, atol=1e-6)
    # ...and the whole trained demo MLP's output, recomputed by hand from its weights in float64.
    if "model.initialization=sequential" not in overrides and "model=deep_mlp" not in overrides:
        images = result_images(fashion_root)
        w = {k: v.double().numpy() for k, v in model.state_dict().items()}
        h = REFERENCE[name](images @ w["fc1.weight"].T + w["fc1.bias"], **params)
        h = np.maximum(h @ w["fc2.weight"].T + w["fc2.bias"], 0)
        h = np.maximum(h @ w["fc3.weight"].T + w["fc3.bias"], 0)
        logits = h @ w["fc4.weight"].T + w["fc4.bias"]
        expected = logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)
        with torch.no_grad():
            got = model(torch.from_numpy(images).float()).double().numpy()
        np.testing.assert_allclose(got, expected, atol=1e-4)


def result_images(fashion_root: Path) -> np.ndarray:
    """The first 64 test images as the model sees them (float in [0, 1], flattened)."""
    from mila_bench.data.load import load_dataset

    data = load_dataset(compose([f"dataset.root={fashion_root}"]).dataset)
    return data.test.normalise(data.test.images[:64]).double().flatten(1).numpy()


@pytest.mark.parametrize(
    ("name", "first", "second"),
    [("mila", ["activation.beta=0"], ["activation.beta=1"]),
     ("aria2", ["activation=aria2", "activation.alpha=0.5"], ["activation=aria2", "activation.alpha=1.5"]),
     ("thresholded_relu", ["activation=thresholded_relu", "activation.theta=0"],
      ["activation=thresholded_relu", "activation.theta=1"])],
)  # fmt: skip
@pytest.mark.slow
def test_runs_differing_only_in_a_parameter_differ(
    tmp_path: Path, fashion_root: Path, name: str, first: list[str], second: list[str]
) -> None:
    a = run(tmp_path, fashion_root, f"{name}-a", "seed=0", *first)
    b = run(tmp_path, fashion_root, f"{name}-b", "seed=0", *second)
    assert a.summary.activation_params != b.summary.activation_params
    assert a.summary.final.test_loss != b.summary.final.test_loss, (a.summary.final, b.summary.final)
    # Same seed, so the initial weights were the same: the parameter is what moved the weights apart.
    assert not torch.equal(a.model.state_dict()["fc1.weight"], b.model.state_dict()["fc1.weight"])


def test_trainer_threads_is_the_runs_torch_thread_count(
    tmp_path: Path, fashion_root: Path, threads_restored: int
) -> None:
    wanted = 1 if threads_restored > 1 else 2  # not the count the process already has
    seen: list[int] = []
    run(tmp_path, fashion_root, "threads", f"trainer.threads={wanted}", on_epoch=lambda _: seen.append(torch.get_num_threads()))
    assert seen == [wanted]


def test_trainer_threads_applies_to_the_training_studies(
    tmp_path: Path, fashion_root: Path, threads_restored: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mila_bench.analysis import depth
    from mila_bench.analysis.choices import parse_activations
    from mila_bench.training import engine

    wanted = 1 if threads_restored > 1 else 2
    seen: list[int] = []
    fit = engine.fit
    monkeypatch.setattr(engine, "fit", lambda *a, **k: seen.append(torch.get_num_threads()) or fit(*a, **k))
    overrides = [f"dataset.root={fashion_root}", "dataset.train_subset=300", "trainer.epochs=1", "device=cpu",
                 f"trainer.threads={wanted}"]  # fmt: skip
    depth.run(parse_activations(["relu"]), [1], 16, 1, overrides, tmp_path, lambda _: None)
    assert seen == [wanted]  # while the study's model trained
    assert torch.get_num_threads() == threads_restored  # and given back after: a study leaks nothing either


@pytest.mark.slow
def test_a_run_learns(tmp_path: Path, fashion_root: Path, committed: Path) -> None:
    """The helper's tiny runs are real training: well above chance (0.10) after one epoch of 2000 images."""
    result = run(tmp_path, fashion_root, "learn", "activation=mila", subset=2000)
    assert result.history[-1].top1 > 0.6 and result.history[-1].test_loss < math.log(10) / 2
    # Its summary.json has the keys, in the order, of the committed records, plus the schema version
    # first and the fields added since (the run's process settings, its cost).
    oldest = json.loads(min((committed / "results").glob("*/summary.json")).read_text())
    written = json.loads((result.run_dir / "summary.json").read_text())
    added = ("process", "cost")
    assert [k for k in written if k not in added] == ["schema_version", *oldest]
    assert written["schema_version"] == SCHEMA_VERSION and all(k in written for k in added)
    assert written["final"] == result.history[-1].as_dict() and result.summary.final == result.history[-1]


@pytest.mark.slow
def test_a_run_records_what_picks_its_cpu_kernels(tmp_path: Path, fashion_root: Path) -> None:
    """environment: torch's CPU capability as the run's process had it (ATEN_CPU_CAPABILITY=default
    caps it), its inter-op threads, torch's libraries, and the kernel environment variables set."""
    env = cli_env(ATEN_CPU_CAPABILITY="default", OMP_WAIT_POLICY="PASSIVE", MKL_CBWR="COMPATIBLE")
    cmd = [sys.executable, "-m", "mila_bench", "train", f"dataset.root={fashion_root}", "dataset.train_subset=600",
           "trainer.epochs=1", "trainer.progress=false", "device=cpu"]  # fmt: skip
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr
    [summary] = [json.loads(p.read_text()) for p in (tmp_path / "results").glob("*/summary.json")]
    probe = subprocess.run([sys.executable, "-c", "import torch; print(torch.get_num_interop_threads())"],
                           capture_output=True, text=True, env=env, check=True)  # fmt: skip
    environment = summary["environment"]
    assert summary["schema_version"] == SCHEMA_VERSION >= 4
    assert environment["cpu_capability"] == "DEFAULT"
    assert environment["interop_threads"] == int(probe.stdout)
    assert {k: environment["env_vars"][k] for k in ("ATEN_CPU_CAPABILITY", "OMP_WAIT_POLICY", "MKL_CBWR")} == {
        "ATEN_CPU_CAPABILITY": "default", "OMP_WAIT_POLICY": "PASSIVE", "MKL_CBWR": "COMPATIBLE"}
    assert any(line.startswith("BLAS_INFO=") for line in environment["torch_build"]) == ("BLAS_INFO=" in torch.__config__.show())
    assert len(environment["torch_build"]) >= 2
