"""The activation registry and the numerics of Mila, Mish, Swish and ReLU."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mila_bench.activations import Activation, available, get_activation, resolve_params, find_entry
from mila_bench.errors import UsageError

KNOWN = ("mila", "mish", "swish", "relu")

# Betas are dyadic so that x + beta is exact in float32 for the integer grid points below;
# otherwise float32's rounding of x + beta alone (up to half an ulp of |x + beta|, e.g.
# ~1e-6 for |x + beta| ~ 20) would move mila's exp-like negative tail past rtol=1e-6.
BETAS = (-5.0, -2.5, -1.0, -0.25, 0.0, 0.5, 1.0, 5.0)


def _grid() -> torch.Tensor:
    """Inputs spanning -1e4..1e4 in float32: extremes, integers, small values, and a dense middle."""
    extremes = [1e4, 1e3, 100.0, 50.0, 30.0, 25.0, 20.0, 15.0, 10.0, 1.0]
    small = [1e-3, 1e-6, 1e-20, 1e-40]  # 1e-40 is a float32 subnormal
    values = [0.0] + [s * v for v in extremes + small for s in (1.0, -1.0)]
    dense = np.linspace(-8.0, 8.0, 161, dtype=np.float32)  # |x| <= 8 keeps input rounding harmless
    return torch.cat([torch.tensor(values, dtype=torch.float32), torch.from_numpy(dense)]).unique()


GRID32 = _grid()


def mila_reference(x: torch.Tensor, beta: float) -> torch.Tensor:
    """x * tanh(softplus(x + beta)) in float64 with a stable softplus (log(1 + e^z) = logaddexp(0, z))."""
    x64 = x.double()
    z = x64 + beta
    softplus = torch.logaddexp(torch.zeros_like(z), z)
    return x64 * torch.tanh(softplus)


# --------------------------------------------------------------------------- registry


def test_available_lists_the_known_activations() -> None:
    names = available()
    assert set(KNOWN) <= set(names)
    assert names == sorted(names)


@pytest.mark.parametrize("lookup", [find_entry, get_activation, Activation], ids=["find_entry", "get_activation", "Activation"])
def test_unknown_name_is_a_usage_error_listing_known_names(lookup) -> None:
    with pytest.raises(UsageError) as info:
        lookup("nope")
    message = str(info.value)
    assert "'nope'" in message
    for name in KNOWN:
        assert re.search(rf"\b{name}\b", message), f"{name!r} not listed in {message!r}"


@pytest.mark.parametrize(
    ("name", "params"),
    [("relu", {"beta": 1.0}), ("mila", {"alpha": 1.0}), ("swish", {"beta": -0.25}), ("mila", {"Beta": 0.0})],
)
def test_unknown_parameter_is_rejected(name: str, params: dict) -> None:
    (key,) = params
    with pytest.raises(UsageError, match=re.escape(repr(key))):
        resolve_params(name, params)
    with pytest.raises(UsageError):
        get_activation(name, **params)


@pytest.mark.parametrize(
    "value", [float("nan"), float("inf"), float("-inf"), "abc", "0.5", True, False, None, [1.0]], ids=repr
)
def test_non_finite_or_non_numeric_value_is_rejected(value: object) -> None:
    with pytest.raises(UsageError, match="beta"):
        resolve_params("mila", {"beta": value})
    with pytest.raises(UsageError):
        get_activation("mila", beta=value)


@pytest.mark.parametrize("value", [-5, 0, 1, -0.25, 5.0, 1e-3])
def test_finite_values_are_accepted_as_floats(value: float) -> None:
    resolved = resolve_params("mila", {"beta": value})
    assert resolved == {"beta": float(value)}
    assert type(resolved["beta"]) is float


def test_mila_default_beta() -> None:
    assert find_entry("mila").defaults == {"beta": -0.25}
    assert resolve_params("mila", {}) == {"beta": -0.25}
    assert get_activation("mila").params == {"beta": -0.25}


def test_parameterless_activations_have_no_defaults() -> None:
    for name in ("mish", "swish", "relu"):
        assert dict(find_entry(name).defaults) == {}
        assert get_activation(name).params == {}


def test_activation_is_a_module_with_name_and_repr() -> None:
    act = get_activation("mila", beta=1)
    assert isinstance(act, nn.Module)
    assert act.name == "mila" and act.params == {"beta": 1.0}
    assert "mila" in repr(act) and "beta=1" in repr(act)


# ------------------------------------- both forms against float64 formulas written here


def sigmoid_reference(x: torch.Tensor) -> torch.Tensor:
    """1 / (1 + e^-x) in float64, split by sign so that e^-x cannot overflow."""
    x64 = x.double()
    e = torch.exp(-x64.abs())
    return torch.where(x64 >= 0, 1 / (1 + e), e / (1 + e))


REFERENCES = {  # each registered default, from its definition; mila_reference is written above
    "mila": lambda x: mila_reference(x, -0.25),
    "mish": lambda x: mila_reference(x, 0.0),
    "swish": lambda x: x.double() * sigmoid_reference(x),
    "relu": lambda x: torch.where(x.double() > 0, x.double(), torch.zeros((), dtype=torch.float64)),
}
TOLERANCE = {torch.float32: {"rtol": 1e-6, "atol": 1e-37}, torch.float64: {"rtol": 1e-12, "atol": 1e-300}}


@pytest.mark.parametrize("name", KNOWN)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_module_and_function_forms_match_float64_references(name: str, dtype: torch.dtype) -> None:
    """Over -1e4..1e4 (extremes, subnormals, a dense middle): each form against the float64 formula.
    (The wider set is checked the same way below.)"""
    x = GRID32.to(dtype)
    expected = REFERENCES[name](GRID32)
    entry = find_entry(name)
    for got in (Activation(name)(x), entry.fn(x, **entry.defaults)):
        assert got.dtype == dtype and got.shape == x.shape
        torch.testing.assert_close(got.double(), expected, **TOLERANCE[dtype])


@pytest.mark.parametrize("beta", BETAS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_bound_and_learnable_beta_match_the_float64_reference(beta: float, dtype: torch.dtype) -> None:
    """β given to the module (fixed, or as a learnable parameter) and to the function is the β computed with."""
    x = GRID32.to(dtype)
    expected = mila_reference(GRID32, beta)
    forms = [
        get_activation("mila", beta=beta)(x),
        Activation("mila", learn=("beta",), beta=beta)(x).detach(),
        find_entry("mila").fn(x, beta=beta),
    ]
    for got in forms:
        assert got.dtype == dtype
        torch.testing.assert_close(got.double(), expected, **TOLERANCE[dtype])


# ------------------------------------------------------------------------ Mila numerics


@pytest.mark.parametrize("beta", BETAS)
def test_mila_float32_follows_its_asymptotes_at_the_extremes(beta: float) -> None:
    """Written from the limits, not the formula: far right tanh(softplus) rounds to 1, so f(x) = x
    and f′ = 1 exactly; far left tanh(s) ≈ s ≈ e^z, so f(x) ≈ x·e^(x+β) (relative error ~e^z),
    f(−1e4) = 0 with f′ = 0; at tiny x, f(x) = x·tanh(softplus(β))."""
    right = torch.tensor([20.0, 100.0, 1e4])
    left = torch.tensor([-30.0, -50.0])
    tiny = torch.tensor([1e-20, -1e-20])
    x = torch.cat([right, left, tiny, torch.tensor([-1e4, 0.0])]).requires_grad_()
    out = get_activation("mila", beta=beta)(x)
    out.sum().backward()
    got, slope = out.detach(), x.grad
    assert torch.equal(got[:3], right) and torch.equal(slope[:3], torch.ones(3))
    torch.testing.assert_close(got[3:5].double(), left.double() * torch.exp(left.double() + beta), rtol=1e-6, atol=0)
    softplus_beta = math.log1p(math.exp(beta))
    torch.testing.assert_close(got[5:7].double(), tiny.double() * math.tanh(softplus_beta), rtol=1e-6, atol=0)
    assert got[7] == 0 and got[8] == 0 and slope[7] == 0
    # f′(0) = tanh(softplus(β)), to float32's absolute precision: the fused backward forms it as 1 − q
    assert slope[8] == pytest.approx(math.tanh(softplus_beta), abs=2e-7)


@pytest.mark.parametrize("beta", BETAS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_mila_output_is_finite(beta: float, dtype: torch.dtype) -> None:
    out = get_activation("mila", beta=beta)(GRID32.to(dtype))
    assert out.dtype == dtype
    assert torch.isfinite(out).all(), GRID32[~torch.isfinite(out)]


@pytest.mark.parametrize("beta", BETAS)
def test_mila_float32_gradient_is_finite(beta: float) -> None:
    x = GRID32.clone().requires_grad_(True)
    get_activation("mila", beta=beta)(x).sum().backward()
    assert x.grad is not None
    assert torch.isfinite(x.grad).all(), GRID32[~torch.isfinite(x.grad)]


@pytest.mark.parametrize("beta", BETAS)
def test_mila_float32_matches_float64_reference(beta: float) -> None:
    out32 = get_activation("mila", beta=beta)(GRID32)
    assert out32.dtype == torch.float32
    ref = mila_reference(GRID32, beta)
    # atol only absorbs float32 subnormal underflow of results far in the negative tail.
    torch.testing.assert_close(out32.double(), ref, rtol=1e-6, atol=1e-37)


@pytest.mark.parametrize("beta", BETAS)
def test_mila_float64_matches_float64_reference(beta: float) -> None:
    out64 = get_activation("mila", beta=beta)(GRID32.double())
    torch.testing.assert_close(out64, mila_reference(GRID32, beta), rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("beta", BETAS)
def test_mila_float64_gradient_matches_analytic(beta: float) -> None:
    """d/dx x tanh(sp(z)) = tanh(sp(z)) + x sech^2(sp(z)) sigmoid(z), z = x + beta."""
    x = torch.linspace(-30.0, 30.0, 241, dtype=torch.float64, requires_grad=True)
    get_activation("mila", beta=beta)(x).sum().backward()
    xd = x.detach()
    z = xd + beta
    sp = torch.logaddexp(torch.zeros_like(z), z)
    expected = torch.tanh(sp) + xd * (1 - torch.tanh(sp) ** 2) * torch.sigmoid(z)
    torch.testing.assert_close(x.grad, expected, rtol=1e-7, atol=1e-12)


@pytest.mark.parametrize("beta", [-5.0, -1.0, -0.25, 0.0, 1.0, 5.0])
def test_mila_gradcheck_float64(beta: float) -> None:
    gen = torch.Generator().manual_seed(0)
    x = (torch.rand(64, generator=gen, dtype=torch.float64) * 12.0 - 6.0).requires_grad_(True)
    act = get_activation("mila", beta=beta)
    assert torch.autograd.gradcheck(act, (x,), eps=1e-6, atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("beta", [-1.0, 0.5, 2.0])
def test_beta_shifts_the_curve(beta: float) -> None:
    x = torch.linspace(-4, 4, 17, dtype=torch.float64)
    expected = x * torch.tanh(F.softplus(x + beta))
    torch.testing.assert_close(get_activation("mila", beta=beta)(x), expected, rtol=1e-12, atol=0)
    # A larger beta strictly raises the output wherever x > 0.
    lower = get_activation("mila", beta=beta - 0.5)(x)
    assert (get_activation("mila", beta=beta)(x)[x > 0] > lower[x > 0]).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_mila_at_beta_zero_is_mish(dtype: torch.dtype) -> None:
    x = GRID32.to(dtype)
    torch.testing.assert_close(get_activation("mila", beta=0.0)(x), F.mish(x), rtol=1e-6, atol=1e-7)


def test_mila_default_beta_is_not_mish() -> None:
    x = torch.linspace(-3, 3, 13, dtype=torch.float64)
    assert not torch.allclose(get_activation("mila")(x), F.mish(x))


# ---------------------------------------------------------------- the other activations


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_swish_is_x_sigmoid_x(dtype: torch.dtype) -> None:
    x = GRID32.to(dtype)
    out = get_activation("swish")(x)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, x * torch.sigmoid(x), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_relu_is_clamp_min_zero(dtype: torch.dtype) -> None:
    x = GRID32.to(dtype)
    assert torch.equal(get_activation("relu")(x), x.clamp(min=0))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_mish_is_torch_mish(dtype: torch.dtype) -> None:
    x = GRID32.to(dtype)
    assert torch.equal(get_activation("mish")(x), F.mish(x))


@pytest.mark.parametrize("name", ["mish", "swish", "relu"])
def test_parameterless_activations_are_finite_with_finite_gradients(name: str) -> None:
    x = GRID32.clone().requires_grad_(True)
    out = get_activation(name)(x)
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(x.grad).all()


def test_activations_preserve_shape() -> None:
    x = torch.randn(2, 3, 4, generator=torch.Generator().manual_seed(1))
    for name in available():
        assert get_activation(name)(x).shape == x.shape
    assert math.isclose(float(get_activation("relu")(torch.tensor(-2.0))), 0.0)


# --- The wider set of the original tables, each against its own float64 formula ----------

def _np(x: torch.Tensor):
    return x.detach().double().numpy()


WIDER_SET = {
    # name: (params, float64 reference written independently with numpy)
    "beta_mish": ({"beta": 1.5}, lambda x, beta: x * np.tanh(np.log(np.power(1 + np.exp(x), beta)))),
    "elu": ({"alpha": 1.0}, lambda x, alpha: np.where(x > 0, x, alpha * (np.exp(x) - 1))),
    "selu": ({}, lambda x: 1.0507009873554805 * np.where(x > 0, x, 1.6732632423543772 * (np.exp(x) - 1))),
    "softplus": ({}, lambda x: np.log1p(np.exp(x))),
    "tanh": ({}, np.tanh),
    "sigmoid": ({}, lambda x: 1 / (1 + np.exp(-x))),
    "hard_sigmoid": ({}, lambda x: np.clip(0.2 * x + 0.5, 0, 1)),
    "softsign": ({}, lambda x: x / (1 + np.abs(x))),
    "leaky_relu": ({"alpha": 0.3}, lambda x, alpha: np.where(x > 0, x, alpha * x)),
    "prelu": ({"alpha": 0.0}, lambda x, alpha: np.where(x > 0, x, alpha * x)),
    "bent_identity": ({}, lambda x: (np.sqrt(x * x + 1) - 1) / 2 + x),
    "aria2": ({"beta": 1.0, "alpha": 1.5}, lambda x, beta, alpha: x * np.power(1 + np.exp(-beta * x), -alpha)),
    "thresholded_relu": ({"theta": 1.0}, lambda x, theta: np.where(x > theta, x, 0.0)),
}


def test_registry_covers_every_activation_of_the_original_tables_and_the_modern_baselines() -> None:
    assert set(WIDER_SET) | set(MODERN) | {"mila", "mish", "swish", "relu"} == set(available())


@pytest.mark.parametrize("name", sorted(WIDER_SET))
def test_wider_set_defaults_and_float64_reference(name: str) -> None:
    defaults, formula = WIDER_SET[name]
    assert dict(find_entry(name).defaults) == defaults
    x = torch.linspace(-12, 12, 4801, dtype=torch.float64)  # moderate range: the numpy formulas are naive
    torch.testing.assert_close(_np(Activation(name)(x)), formula(_np(x), **defaults), rtol=1e-12, atol=1e-12)
    x32 = x.float()
    torch.testing.assert_close(
        _np(find_entry(name).fn(x32, **defaults)), formula(_np(x32), **defaults), rtol=1e-6, atol=1e-6
    )


@pytest.mark.parametrize(
    ("name", "params"),
    [("beta_mish", {"beta": 0.7}), ("elu", {"alpha": 0.5}), ("leaky_relu", {"alpha": 0.01}),
     ("aria2", {"beta": 2.0, "alpha": 0.5}), ("thresholded_relu", {"theta": -0.5})],
)  # fmt: skip
def test_wider_set_parameters_are_used(name: str, params: dict[str, float]) -> None:
    _, formula = WIDER_SET[name]
    x = torch.linspace(-6, 6, 1201, dtype=torch.float64)
    torch.testing.assert_close(_np(Activation(name, **params)(x)), formula(_np(x), **params), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", sorted(WIDER_SET))
def test_wider_set_is_finite_at_extremes_with_finite_gradients(name: str) -> None:
    x = torch.tensor([-1e4, -100.0, -1.0, 0.0, 1.0, 100.0, 1e4], requires_grad=True)
    out = Activation(name)(x)
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(x.grad).all()


@pytest.mark.parametrize("name", ["beta_mish", "elu", "aria2", "leaky_relu", "bent_identity", "softsign"])
def test_wider_set_gradcheck(name: str) -> None:
    x = (torch.rand(30, dtype=torch.float64) * 8 - 4).requires_grad_()
    assert torch.autograd.gradcheck(Activation(name).double(), (x,))


# --- The modern baselines, each against its own float64 formula ---------------------------

_erf = np.vectorize(math.erf)
MODERN = {
    # name: (params, float64 reference written independently with numpy / math.erf)
    "gelu": ({}, lambda x: x * 0.5 * (1 + _erf(x / math.sqrt(2)))),
    "gelu_tanh": ({}, lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))),
    "silu": ({}, lambda x: x / (1 + np.exp(-x))),
    "hardswish": ({}, lambda x: x * np.minimum(np.maximum(x + 3, 0), 6) / 6),
    "hardtanh": ({"min_val": -1.0, "max_val": 1.0}, lambda x, min_val, max_val: np.clip(x, min_val, max_val)),
    "relu6": ({}, lambda x: np.minimum(np.maximum(x, 0), 6)),
    "squared_relu": ({}, lambda x: np.maximum(x, 0) ** 2),
    "celu": ({"alpha": 1.0}, lambda x, alpha: np.maximum(0, x) + np.minimum(0, alpha * (np.exp(x / alpha) - 1))),
}


@pytest.mark.parametrize("name", sorted(MODERN))
def test_modern_baselines_match_their_float64_reference(name: str) -> None:
    defaults, formula = MODERN[name]
    assert dict(find_entry(name).defaults) == defaults
    x = torch.linspace(-12, 12, 4801, dtype=torch.float64)
    torch.testing.assert_close(_np(Activation(name)(x)), formula(_np(x), **defaults), rtol=1e-12, atol=1e-12)
    x32 = x.float()
    out32 = Activation(name)(x32)
    assert out32.dtype == torch.float32
    torch.testing.assert_close(_np(out32), formula(_np(x32), **defaults), rtol=2e-6, atol=2e-6)


@pytest.mark.parametrize(
    ("name", "params"), [("hardtanh", {"min_val": -0.5, "max_val": 2.0}), ("celu", {"alpha": 0.5}), ("celu", {"alpha": 2.0})]
)
def test_modern_baselines_parameters_are_used(name: str, params: dict[str, float]) -> None:
    _, formula = MODERN[name]
    x = torch.linspace(-6, 6, 1201, dtype=torch.float64)
    torch.testing.assert_close(_np(Activation(name, **params)(x)), formula(_np(x), **params), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", sorted(MODERN))
def test_modern_baselines_are_finite_with_finite_gradients_and_pass_gradcheck(name: str) -> None:
    x = torch.tensor([-1e4, -100.0, -1.0, 0.0, 1.0, 100.0, 1e4], requires_grad=True)
    out = Activation(name)(x)
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(x.grad).all()
    # away from the kinks (hardswish at ±3, hardtanh at ±1, relu6 at 0 and 6), where the derivative is defined
    grid = torch.tensor([-5.3, -2.7, -1.6, -0.4, 0.3, 0.8, 1.7, 2.6, 4.9, 6.8], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(Activation(name).double(), (grid,))


def test_learned_parameters_of_the_modern_baselines_get_gradients() -> None:
    for name, key in (("celu", "alpha"), ("hardtanh", "max_val")):
        module = Activation(name, learn=[key])
        module(torch.linspace(-3, 3, 50)).sum().backward()
        assert module.learned[key].grad is not None and torch.isfinite(module.learned[key].grad)


def test_silu_is_the_swish_entry_under_a_second_name() -> None:
    assert find_entry("silu") is find_entry("swish")  # an alias, not a copy
    x = torch.linspace(-5, 5, 101)
    assert torch.equal(Activation("silu")(x), Activation("swish")(x))
    assert Activation("silu").name == "silu"  # recorded under the name asked for


def test_describe_lists_every_activation_with_its_defaults() -> None:
    from mila_bench.activations import describe

    lines = {line.split()[0]: line for line in describe()}
    assert set(lines) == set(available()) | {"custom"}
    assert "min_val=-1, max_val=1" in lines["hardtanh"] and "beta=-0.25" in lines["mila"]
    assert "alias of swish" in lines["silu"] and "activation.target=MODULE:NAME" in lines["custom"]
