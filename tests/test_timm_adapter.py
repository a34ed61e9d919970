"""model=timm: any timm architecture from scratch, fitted to small inputs, every activation the configured one.

What the adapter built is checked against an independent walk of the model timm builds with its
own defaults: the same number of activation modules, none of the defaults' kinds left.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import torch
from torch import nn

from conftest import run_cli
from mila_bench.activations import Activation, activation_factory
from mila_bench.errors import UsageError
from mila_bench.models.timm_adapter import GATE_TYPES, build_timm

timm = pytest.importorskip("timm")

ARCHS = (
    "resnet18", "mobilenetv3_small_100", "efficientnet_b0", "regnetx_002",
    "densenet121", "vgg11_bn", "convnext_atto", "vit_tiny_patch16_224",
)  # fmt: skip
SHAPES = ((1, 28, 28), (3, 32, 32))
#: Activation module kinds in torch and timm (by class name), for the independent walk.
ACTIVATION_KINDS = {"ReLU", "ReLU6", "GELU", "GELUTanh", "SiLU", "Swish", "Hardswish", "HardSwish", "Mish", "LeakyReLU", "ELU"}


def timm_cfg(arch: str, **settings: object) -> dict[str, object]:
    """A ``model=timm`` group as configs/model/timm.yaml gives it, for ``arch``."""
    from omegaconf import OmegaConf

    from conftest import ROOT

    return {**OmegaConf.to_container(OmegaConf.load(ROOT / "configs" / "model" / "timm.yaml")), "arch": arch, **settings}


def default_activations(arch: str) -> Counter[str]:
    """Activation modules (gates aside) of ``arch`` as timm builds it by default, on the meta device."""
    with torch.device("meta"):
        model = timm.create_model(arch, pretrained=False, num_classes=10)
    return Counter(type(m).__name__ for m in model.modules() if type(m).__name__ in ACTIVATION_KINDS)


@pytest.mark.slow
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[1]}x{s[2]}")
@pytest.mark.parametrize("arch", ARCHS)
def test_every_listed_model_trains_a_step_with_mila_and_keeps_none_of_its_own_activations(arch: str, shape) -> None:
    torch.manual_seed(0)
    make = activation_factory({"name": "mila", "beta": -0.25})
    model = build_timm(timm_cfg(arch), make, shape, 10)
    ours = [m for m in model.modules() if isinstance(m, Activation)]
    defaults = default_activations(arch)
    left = Counter(type(m).__name__ for m in model.modules() if type(m).__name__ in defaults)
    assert sum(defaults.values()) > 0
    assert left == Counter(), f"{arch} still has {dict(left)}"
    assert len(ours) == sum(defaults.values())  # one Mila for every activation timm put in
    assert all(m.name == "mila" and m.params == {"beta": -0.25} for m in ours)
    assert sum(model.timm_report.replaced.values()) == len(ours)

    x, y = torch.rand(4, *shape), torch.arange(4)
    before = [p.detach().clone() for p in model.parameters()]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    loss = nn.functional.cross_entropy(model.train()(x), y)
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss)
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters()))


@pytest.mark.slow
def test_small_inputs_use_the_models_own_arguments_else_a_recorded_stem_adaptation() -> None:
    make = activation_factory({"name": "relu"})
    vit = build_timm(timm_cfg("vit_tiny_patch16_224"), make, (3, 32, 32), 10)
    assert vit.patch_embed.proj.kernel_size == (4, 4) and vit.patch_embed.num_patches == 64
    assert vit.timm_report.small_input == "timm arguments patch_size=4"
    dense = build_timm(timm_cfg("densenet121"), make, (1, 28, 28), 10)
    assert dense.features.conv0.stride == (1, 1) and isinstance(dense.features.pool0, nn.Identity)
    assert "features.conv0 stride (2, 2)" in dense.timm_report.small_input
    # On an input it was designed for, nothing is adapted.
    assert build_timm(timm_cfg("resnet18"), make, (3, 224, 224), 10).timm_report.small_input is None
    # A user's own patch size wins over ours.
    mine = build_timm(timm_cfg("vit_tiny_patch16_224", kwargs={"patch_size": 8}), make, (3, 32, 32), 10)
    assert mine.patch_embed.num_patches == 16 and mine.timm_report.small_input is None


@pytest.mark.slow
def test_gates_are_kept_unless_asked_and_what_remains_is_counted() -> None:
    make = activation_factory({"name": "mila"})
    kept = build_timm(timm_cfg("mobilenetv3_small_100"), make, (1, 28, 28), 10)
    gates = Counter(type(m).__name__ for m in kept.modules() if type(m).__name__ in GATE_TYPES)
    assert gates and kept.timm_report.remaining == dict(gates)
    # The ReLU inside the squeeze-excite blocks takes no act_layer: it was replaced by type.
    assert kept.timm_report.replaced.get("ReLU", 0) > 0
    replaced = build_timm(timm_cfg("mobilenetv3_small_100", replace_gates=True), make, (1, 28, 28), 10)
    assert not any(type(m).__name__ in GATE_TYPES for m in replaced.modules())
    assert replaced.timm_report.replaced["Hardsigmoid"] == gates["Hardsigmoid"]


def serf(x: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """x · erf(ln(1 + eˣ)), a custom activation that no model has by default."""
    return scale * x * torch.erf(nn.functional.softplus(x))


@pytest.mark.slow
def test_a_custom_activation_reaches_the_timm_model(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "timm_test_acts.py").write_text(
        "import torch\nfrom torch.nn import functional as F\n\n"
        "def serf(x, scale=1.0):\n    return scale * x * torch.erf(F.softplus(x))\n"
    )
    monkeypatch.chdir(tmp_path)
    make = activation_factory({"name": "custom", "target": "timm_test_acts:serf", "scale": 2.0})
    model = build_timm(timm_cfg("regnetx_002"), make, (1, 28, 28), 10)
    ours = [m for m in model.modules() if isinstance(m, Activation)]
    assert ours and len(ours) == sum(default_activations("regnetx_002").values())
    x = torch.linspace(-3, 3, 11)
    for module in ours:
        torch.testing.assert_close(module(x), serf(x, 2.0))


def test_a_model_with_nothing_to_replace_is_an_error() -> None:
    from timm.models import register_model

    class Linear(nn.Module):
        def __init__(self, in_chans: int = 3, num_classes: int = 10, **kwargs: object) -> None:
            super().__init__()
            self.fc = nn.LazyLinear(num_classes)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(x.flatten(1))

    if "mila_bench_test_linear" not in timm.list_models():
        @register_model
        def mila_bench_test_linear(pretrained: bool = False, **kwargs: object) -> nn.Module:
            return Linear(**kwargs)

    with pytest.raises(UsageError, match="no activation module could be replaced"):
        build_timm(timm_cfg("mila_bench_test_linear"), activation_factory({"name": "mila"}), (1, 28, 28), 10)


@pytest.mark.slow
def test_an_unknown_architecture_is_one_line_with_the_closest_names(tmp_path: Path) -> None:
    result = run_cli(["train", "model=timm", "model.arch=resnet_18"], cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "model.arch='resnet_18' is not a timm model" in lines[0]
    assert "resnet18" in lines[0].split("closest:")[1]
    assert not (tmp_path / "results").exists() and not (tmp_path / "Results.md").exists()


@pytest.mark.slow
def test_a_timm_model_trains_through_the_cli_learns_and_records_what_was_replaced(
    tmp_path: Path, fashion_root: Path
) -> None:
    args = ["train", "model=timm", "model.arch=regnetx_002", "dataset.train_subset=2000", "trainer.epochs=2",
            "trainer.threads=1", "trainer.progress=false", f"dataset.root={fashion_root}"]  # fmt: skip
    result = run_cli(args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    [summary_path] = list((tmp_path / "results").glob("*/summary.json"))
    summary = json.loads(summary_path.read_text())
    assert summary["final"]["top1"] > 0.3  # 2,000 images, 2 epochs: well above chance (0.1)
    expected = sum(default_activations("regnetx_002").values())
    assert summary["model_adaptation"] == {"arch": "regnetx_002", "replaced": {"act_layer": expected},
                                           "remaining": {}, "small_input": None}  # fmt: skip
    assert "## fashion_mnist · timm · regnetx_002" in (tmp_path / "Results.md").read_text()


@pytest.mark.slow
def test_a_model_that_cannot_fit_the_input_is_refused_before_a_record_exists(tmp_path: Path, fashion_root: Path) -> None:
    from timm.models import register_model

    from mila_bench.config import compose
    from mila_bench.pipeline import train

    class Fixed224(nn.Module):
        """A model only for 224x224 images: a dense layer over the whole image, no stem to adapt."""

        def __init__(self, in_chans: int = 3, num_classes: int = 10, **kwargs: object) -> None:
            super().__init__()
            self.fc, self.act = nn.Linear(in_chans * 224 * 224, 16), nn.ReLU()
            self.head = nn.Linear(16, num_classes)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.act(self.fc(x.flatten(1))))

    if "mila_bench_test_fixed224" not in timm.list_models():

        @register_model
        def mila_bench_test_fixed224(pretrained: bool = False, **kwargs: object) -> nn.Module:
            return Fixed224(**kwargs)

    cfg = compose(["model=timm", "model.arch=mila_bench_test_fixed224", f"dataset.root={fashion_root}",
                   f"results.dir={tmp_path / 'results'}", f"results.markdown={tmp_path / 'Results.md'}"])  # fmt: skip
    with pytest.raises(UsageError, match="does not run on 28x28 inputs"):
        train(cfg)
    assert not (tmp_path / "results").exists() and not (tmp_path / "Results.md").exists()
