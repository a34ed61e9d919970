"""Run by tests/test_triton_mila.py under TRITON_INTERPRET=1 (not collected on its own).

Mila's Triton kernels (activations/kernels/triton_mila.py), run by Triton's interpreter on the CPU
(``TRITON_INTERPRET=1``), against float64 formulas: values, gradients, dL/dβ, half precision,
empty and odd sizes, and non-contiguous or channels_last tensors laid out by the operator."""

from __future__ import annotations

import os

import pytest
import torch

from mila_bench.activations.kernels import op, triton_mila

assert os.environ.get("TRITON_INTERPRET") == "1", "run through tests/test_triton_mila.py"


def reference(x: torch.Tensor, beta: float, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, float]:
    """float64 Mila, dL/dx and dL/dβ by autograd through torch's own softplus and tanh."""
    xd = x.detach().double().requires_grad_()
    bd = torch.tensor(float(beta), dtype=torch.float64, requires_grad=True)
    y = xd * torch.tanh(torch.nn.functional.softplus(xd + bd))
    y.backward(grad.double())
    return y.detach(), xd.grad, float(bd.grad)


def inputs(n: int, dtype: torch.dtype = torch.float32, seed: int = 0) -> torch.Tensor:
    """Normal values and extremes (far negative, far positive, zero, around the clamp)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, generator=g, dtype=torch.float64) * 4
    extremes = torch.tensor([-100.0, -30.0, -1e-3, 0.0, 1e-3, 19.5, 20.5, 40.0, 1e4], dtype=torch.float64)
    x[: min(n, len(extremes))] = extremes[: min(n, len(extremes))]
    return x.to(dtype)


@pytest.mark.parametrize("n", [1, 7, 1023, 1024, 1025, 5000])
@pytest.mark.parametrize("beta", [-0.25, 1.5])
def test_fp32_values_and_gradients_against_float64(n: int, beta: float) -> None:
    x, grad = inputs(n), inputs(n, seed=1)
    y_ref, dx_ref, _ = reference(x, beta, grad)
    y = triton_mila.forward(x, beta)
    dx, dbeta = triton_mila.backward(x, beta, grad, False)
    assert y.dtype == dx.dtype == torch.float32 and dbeta is None
    torch.testing.assert_close(y.double(), y_ref, rtol=2e-6, atol=1e-6)
    torch.testing.assert_close(dx.double(), dx_ref, rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize("n", [5, 3001])
def test_beta_as_a_tensor_gives_the_summed_beta_gradient(n: int) -> None:
    x, grad = inputs(n), inputs(n, seed=2)
    beta = torch.tensor(0.3)
    y_ref, dx_ref, dbeta_ref = reference(x, 0.3, grad)
    torch.testing.assert_close(triton_mila.forward(x, beta).double(), y_ref, rtol=2e-6, atol=1e-6)
    dx, dbeta = triton_mila.backward(x, beta, grad, True)
    torch.testing.assert_close(dx.double(), dx_ref, rtol=2e-5, atol=1e-6)
    assert dbeta.shape == () and dbeta.dtype == torch.float32
    assert abs(float(dbeta) - dbeta_ref) <= 1e-4 * (abs(dbeta_ref) + 1)
    # several programs each write a partial sum: summed once, in order, the same every time
    assert float(triton_mila.backward(x, beta, grad, True)[1]) == float(dbeta)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_is_computed_in_float32_and_stored_in_its_type(dtype: torch.dtype) -> None:
    x = inputs(2000, dtype).clamp(-60, 60)  # fp16 holds up to 65504
    grad = inputs(2000, dtype, seed=3).clamp(-60, 60)
    y_ref, dx_ref, _ = reference(x, -0.25, grad)
    y = triton_mila.forward(x, -0.25)
    dx, _ = triton_mila.backward(x, -0.25, grad, False)
    assert y.dtype == dx.dtype == dtype
    # the float32 result rounded once to the storage type: equal to the reference rounded the same way
    torch.testing.assert_close(y, y_ref.to(dtype), rtol=0, atol=0) if dtype == torch.float16 else None
    eps = torch.finfo(dtype).eps
    torch.testing.assert_close(y.double(), y_ref, rtol=eps, atol=eps)
    torch.testing.assert_close(dx.double(), dx_ref, rtol=2 * eps, atol=2 * eps)


def test_empty_input() -> None:
    x = torch.empty(0)
    assert triton_mila.forward(x, 0.0).shape == (0,)
    dx, dbeta = triton_mila.backward(x, torch.tensor(0.5), x, True)
    assert dx.shape == (0,) and float(dbeta) == 0.0


@pytest.mark.parametrize(
    "make",
    [
        lambda t: t.t(),  # transposed
        lambda t: t[:, ::3],  # strided slice
        lambda t: t.view(4, 6, 5, 7).contiguous(memory_format=torch.channels_last),  # channels_last
        lambda t: t.view(4, 6, 5, 7).permute(0, 2, 1, 3),  # a permutation that is neither
    ],
    ids=["transposed", "sliced", "channels_last", "permuted"],
)
def test_non_contiguous_inputs_through_the_operators_layout(make) -> None:
    x = make(inputs(840).view(24, 35))
    grad = make(inputs(840, seed=4).view(24, 35))
    y_ref, dx_ref, _ = reference(x, -0.25, grad)
    y = op._on_vectors(lambda v: triton_mila.forward(v, -0.25), x)
    dx = op._on_vectors(lambda v, g: triton_mila.backward(v, -0.25, g, False), x, grad)[0]
    torch.testing.assert_close(y.double(), y_ref, rtol=2e-6, atol=1e-6)
    torch.testing.assert_close(dx.double(), dx_ref, rtol=2e-5, atol=1e-6)
    # the real output is laid out as the operator's fake one says (torch.compile plans with it)
    assert y.stride() == op._fake_like(x).stride() and y.shape == x.shape
    if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last):
        assert y.is_contiguous(memory_format=torch.channels_last)  # no copy to NCHW and back
