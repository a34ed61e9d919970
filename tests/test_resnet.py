"""ResNet v1/v2: parameter counts from the architecture, shapes, registry activations throughout, depths."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mila_bench.activations import Activation, get_activation
from mila_bench.config import compose
from mila_bench.errors import UsageError
from mila_bench.models import build_model
from mila_bench.models.resnet import DEPTHS, SameConv2d, same_padding


def conv(c_in: int, c_out: int, k: int) -> int:
    return c_in * c_out * k * k + c_out  # Keras' Conv2D keeps its bias


def bn(c: int) -> int:
    return 2 * c  # trainable γ and β


def expected_v1(depth: int, classes: int) -> int:
    """Stem conv-BN, per block two 3×3 conv-BN (+1×1 projection where the width changes), dense."""
    n = (depth - 2) // 6
    total, c_in = conv(3, 16, 3) + bn(16), 16
    for width in (16, 32, 64):
        for _ in range(n):
            total += conv(c_in, width, 3) + bn(width) + conv(width, width, 3) + bn(width)
            total += conv(c_in, width, 1) if c_in != width else 0
            c_in = width
    return total + 64 * classes + classes


def expected_v2(depth: int, classes: int) -> int:
    """Stem conv-BN, per block BN-1×1, BN-3×3, BN-1×1 (the first block has no leading BN) + projection, BN, dense."""
    n = (depth - 2) // 9
    total, c_in, first = conv(3, 16, 3) + bn(16), 16, True
    for c_mid, c_out in ((16, 64), (64, 128), (128, 256)):
        for i in range(n):
            total += (0 if first else bn(c_in)) + conv(c_in, c_mid, 1)
            total += bn(c_mid) + conv(c_mid, c_mid, 3) + bn(c_mid) + conv(c_mid, c_out, 1)
            total += conv(c_in, c_out, 1) if i == 0 else 0
            c_in, first = c_out, False
    return total + bn(256) + 256 * classes + classes


def resnet(depth: int, version: int, classes: int = 10, activation: str = "mila", **params: float) -> nn.Module:
    torch.manual_seed(0)
    cfg = {"name": "resnet", "depth": depth, "version": version, "kernel_l2": 1e-4}
    return build_model(cfg, lambda: get_activation(activation, **params), (3, 32, 32), classes)


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_resnet20_v1_has_the_published_size() -> None:
    model = resnet(20, 1)
    assert count(model) == expected_v1(20, 10)
    assert 0.26e6 < count(model) < 0.28e6  # "ResNet20 v1: 0.27 M"
    # The Keras example's summary counts BN moving statistics too: 274,442 in total.
    moving = sum(m.running_mean.numel() + m.running_var.numel() for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    assert count(model) + moving == 274_442


@pytest.mark.parametrize(("version", "depth"), [(v, d) for v, ds in DEPTHS.items() for d in ds])
def test_parameter_counts_follow_the_architecture(version: int, depth: int) -> None:
    for classes in (10, 100):
        with torch.device("meta"):  # shapes only: no memory, no initialisation work
            model = resnet(depth, version, classes)
        assert count(model) == (expected_v1 if version == 1 else expected_v2)(depth, classes)


@pytest.mark.parametrize(("version", "depth", "activations"), [(1, 20, 1 + 6 * 3), (1, 32, 1 + 6 * 5), (2, 20, 1 + 9 * 2)])
@pytest.mark.slow
def test_output_shapes_and_registry_activations_throughout(version: int, depth: int, activations: int) -> None:
    for classes in (10, 100):
        model = resnet(depth, version, classes, "mila", beta=0.5)
        model.train()
        assert model(torch.randn(4, 3, 32, 32)).shape == (4, classes)
        model.eval()
        assert model(torch.randn(2, 3, 32, 32)).shape == (2, classes)
    acts = [m for m in model.modules() if isinstance(m, Activation)]
    assert len(acts) == activations  # v1: stem + 2 per block; v2: stem + 3 per block - 1 (first block) + head
    assert len({id(a) for a in acts}) == len(acts)  # a fresh module each time
    assert all(a.name == "mila" and a.params == {"beta": 0.5} for a in acts)
    assert not any(isinstance(m, (nn.ReLU, nn.SiLU, nn.Mish)) for m in model.modules())


def test_activation_changes_every_layer_output() -> None:
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        a, b = resnet(20, 2, activation="mila").eval()(x), resnet(20, 2, activation="relu").eval()(x)
    assert not torch.allclose(a, b)


@pytest.mark.parametrize(("version", "depth", "allowed"), [(1, 21, "20, 32, 44, 56, 110, 164"), (2, 32, "20, 56, 110, 164")])
def test_wrong_depth_is_one_line_listing_the_valid_ones(version: int, depth: int, allowed: str) -> None:
    with pytest.raises(UsageError) as err:
        resnet(depth, version)
    assert f"model.depth={depth}" in str(err.value) and allowed in str(err.value)
    with pytest.raises(UsageError, match=allowed):
        compose(["model=resnet", f"model.version={version}", f"model.depth={depth}"])
    with pytest.raises(UsageError, match="allowed: 1, 2"):
        compose(["model=resnet", "model.version=3"])


def test_kernel_l2_becomes_weight_decay_on_conv_kernels_only() -> None:
    model = resnet(20, 1)
    kernels, rest = model.param_groups(weight_decay=0.0)
    assert kernels["weight_decay"] == pytest.approx(2e-4) and rest["weight_decay"] == 0.0
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert {id(p) for p in kernels["params"]} == {id(m.weight) for m in convs}
    everything = [*kernels["params"], *rest["params"]]
    assert len(everything) == len(list(model.parameters())) and {id(p) for p in everything} == {id(p) for p in model.parameters()}


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "expected"),
    [
        (32, 3, 2, (0, 1)),  # even input, stride 2: Keras pads only bottom/right
        (16, 3, 2, (0, 1)),
        (33, 3, 2, (1, 1)),  # odd input: ⌈33/2⌉ = 17 outputs need 2 pixels, one each side
        (7, 3, 2, (1, 1)),
        (8, 5, 2, (1, 2)),  # total 3: the extra pixel after
        (9, 5, 2, (2, 2)),
        (32, 3, 1, (1, 1)),  # stride 1: symmetric, as padding=1
        (32, 1, 2, (0, 0)),  # 1×1 never pads
        (33, 1, 2, (0, 0)),
        (10, 3, 3, (1, 1)),  # ⌈10/3⌉ = 4 outputs: (4 − 1)·3 + 3 − 10 = 2
        (11, 3, 3, (0, 1)),
    ],
)
def test_same_padding_arithmetic(size: int, kernel: int, stride: int, expected: tuple[int, int]) -> None:
    assert same_padding(size, kernel, stride) == expected
    before, after = expected
    assert (size + before + after - kernel) // stride + 1 == -(-size // stride)  # Keras' 'same' output size


@pytest.mark.parametrize("size", [32, 33, 8, 7])
def test_strided_conv_pads_bottom_right_like_keras(size: int) -> None:
    torch.manual_seed(0)
    conv = SameConv2d(2, 3, 3, stride=2)
    x = torch.randn(1, 2, size, size)
    before, after = same_padding(size, 3, 2)
    expected = F.conv2d(F.pad(x, (before, after, before, after)), conv.weight, conv.bias, stride=2)
    with torch.no_grad():
        out = conv(x)
    assert out.shape[-2:] == (-(-size // 2), -(-size // 2))
    assert torch.equal(out, expected)
    if size % 2 == 0:  # not what a symmetric padding=1 gives
        assert not torch.allclose(out, F.conv2d(x, conv.weight, conv.bias, stride=2, padding=1))


@pytest.mark.parametrize(("version", "depth"), [(1, 20), (2, 20)])
def test_modules_are_registered_in_forward_order(version: int, depth: int) -> None:
    model = resnet(depth, version).eval()
    leaves = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.BatchNorm2d, nn.Linear))]  # what state_dict holds
    called: list[nn.Module] = []
    hooks = [m.register_forward_hook(lambda m, i, o: called.append(m)) for m in leaves]
    with torch.no_grad():
        model(torch.randn(1, 3, 32, 32))
    for hook in hooks:
        hook.remove()
    assert [id(m) for m in called] == [id(m) for m in leaves]
    names = list(dict.fromkeys(k.split(".")[0] for k in model.state_dict()))
    assert names == (["stem", "blocks", "fc"] if version == 1 else ["stem", "blocks", "head", "fc"])


# ------------------------------------------- Keras' initialisation and batch norm, as configured


def configured_resnet(version: int, depth: int) -> nn.Module:
    """The ResNet that `train model=resnet ...` builds for CIFAR-10 (same composer, factory and builder)."""
    from mila_bench.activations import activation_factory

    cfg = compose(["model=resnet", "dataset=cifar10", f"model.version={version}", f"model.depth={depth}"])
    torch.manual_seed(0)
    return build_model(cfg.model, activation_factory(cfg.activation), (3, 32, 32), 10)


@pytest.mark.parametrize(("version", "depth"), [(1, 20), (2, 20)])
def test_kernels_start_from_keras_truncated_he_normal(version: int, depth: int) -> None:
    """Keras' he_normal: a normal of std √(2/fan_in)/c cut at ±2 of that std, where c is the std of a
    standard normal cut at ±2 (so the kept values have std √(2/fan_in) again). Biases start at 0."""
    from scipy import stats

    c = stats.truncnorm(-2, 2).std()  # 0.8796...
    layers = [m for m in configured_resnet(version, depth).modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    standardized = []
    for layer in layers:
        w = layer.weight.detach().double().flatten().numpy()
        fan_in = layer.weight[0].numel()
        target = math.sqrt(2.0 / fan_in)  # the std of the truncated distribution
        scale = target / c  # the std of the normal before truncation
        assert np.abs(w).max() <= 2 * scale * (1 + 1e-6), layer  # nothing beyond the cut
        # The sample std of n draws is within a few of its standard errors (≤ target/√(2n)) of the target.
        assert abs(w.std(ddof=1) - target) <= 5 * target / math.sqrt(2 * len(w)), (layer, w.std(), target)
        assert abs(w.mean()) <= 5 * target / math.sqrt(len(w)), layer
        assert layer.bias is not None and torch.count_nonzero(layer.bias) == 0, layer
        standardized.append(w / scale)
    # All kernels together, standardised, follow the standard normal cut at ±2 (not a uniform or an uncut normal).
    pooled = np.concatenate(standardized)
    assert len(pooled) > 250_000
    assert stats.kstest(pooled, stats.truncnorm(-2, 2).cdf).pvalue > 1e-3
    assert stats.kurtosis(pooled) == pytest.approx(stats.truncnorm(-2, 2).stats(moments="k"), abs=0.05)


@pytest.mark.parametrize(("version", "depth"), [(1, 20), (2, 20)])
def test_batch_norm_uses_keras_epsilon_and_momentum(version: int, depth: int) -> None:
    """Keras' BatchNormalization: epsilon 1e-3, moving averages kept with momentum 0.99, i.e. torch's 0.01."""
    norms = [m for m in configured_resnet(version, depth).modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert len(norms) >= 19
    for bn in norms:
        assert (bn.eps, bn.momentum) == (1e-3, pytest.approx(0.01)), bn
    # What momentum 0.99 means: one training batch moves the running mean 1 % of the way to the batch mean.
    bn = norms[0]
    x = torch.randn(64, bn.num_features, 4, 4) + 3.0
    bn.train()
    before = bn.running_mean.clone()
    bn(x)
    torch.testing.assert_close(bn.running_mean, 0.99 * before + 0.01 * x.mean(dim=(0, 2, 3)))
    # ...and epsilon 1e-3 in the normalisation itself, visible on a channel of tiny variance.
    bn.eval()
    bn.running_mean.zero_()
    bn.running_var.fill_(1e-3)
    with torch.no_grad():
        out = bn(torch.ones(1, bn.num_features, 1, 1))
    expected = bn.weight / math.sqrt(1e-3 + 1e-3) + bn.bias
    torch.testing.assert_close(out.flatten(), expected.detach())
