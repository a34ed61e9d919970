"""The fused Mila kernel: numerics of both paths, memory saved for backward, learnable β."""

from __future__ import annotations

from contextlib import ExitStack

import pytest
import torch
import torch.nn.functional as F

from mila_bench.activations import fused_mila
from mila_bench.activations.kernels.op import mila
from mila_bench.activations import Activation, activation_factory, mish


@pytest.fixture
def impl():
    """``impl(name)``: a fresh kernel state of that impl for the rest of the test; the previous one after."""
    with ExitStack() as stack:
        yield lambda name: stack.enter_context(fused_mila.kernels(name))


def reference(x: torch.Tensor, beta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """float64 Mila and d/dx from the textbook formulas (torch's own softplus/tanh/sigmoid)."""
    x = x.double()
    z = x + beta
    t = torch.tanh(torch.logaddexp(torch.zeros_like(z), z))
    return x * t, t + x * (1 - t * t) * torch.sigmoid(z)


def extreme_inputs(n: int = 1 << 17) -> torch.Tensor:
    """Normal values plus the extremes, at a size where the compiled path would be taken."""
    edges = torch.tensor([-1e4, -1e3, -100.0, -30.0, -20.0, -1.0, 0.0, 1e-6, 1.0, 19.5, 20.0, 25.0, 100.0, 1e4])
    return torch.cat([edges, torch.randn(n - len(edges), generator=torch.Generator().manual_seed(0)) * 4])


def check_against_reference(x: torch.Tensor, beta: float) -> None:
    leaf = x.clone().requires_grad_()
    out = mila(leaf, beta)
    out.backward(torch.ones_like(out))
    value, slope = reference(x, beta)
    assert torch.isfinite(out).all() and torch.isfinite(leaf.grad).all()
    # relative error, or absolute where the reference is below 1 in magnitude (the derivative
    # crosses zero, and in the far negative tail float32's rounding of x + β alone is ~1e-6 relative)
    torch.testing.assert_close(out.double(), value, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(leaf.grad.double(), slope, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("beta", [-5.0, -0.25, 0.0, 1.5, 5.0])
def test_eager_kernel_matches_float64_reference(impl, beta: float) -> None:
    impl("eager")
    check_against_reference(extreme_inputs(), beta)


def test_eager_kernel_block_by_block_matches_the_whole_tensor(impl, monkeypatch) -> None:
    """Tensors larger than two blocks go block by block on CPU (the last block shorter): same
    values, input gradient and summed β gradient as the one-block computation."""
    impl("eager")
    x = extreme_inputs(10_000).double().reshape(100, 100)
    g = torch.randn(100, 100, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    results = []
    for block in (1 << 20, 768):  # one block; 13 blocks of 768 and one of 16
        monkeypatch.setattr(fused_mila, "EAGER_BLOCK", block)
        leaf = x.clone().requires_grad_()
        beta = torch.tensor(-0.25, dtype=torch.float64, requires_grad=True)
        out = mila(leaf, beta)
        out.backward(g)
        results.append((out.detach(), leaf.grad, beta.grad))
    assert len(fused_mila._blocks(x.numel(), x.device)) == 14
    for whole, blockwise in zip(results[0], results[1]):
        torch.testing.assert_close(blockwise, whole, rtol=1e-12, atol=1e-12)
    value, slope = reference(x, -0.25)
    torch.testing.assert_close(results[1][0], value, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(results[1][1], slope * g, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("beta", [-5.0, -0.25, 0.0, 5.0])
@pytest.mark.slow
def test_compiled_kernel_matches_float64_reference(impl, beta: float) -> None:
    impl("compiled")
    check_against_reference(extreme_inputs(), beta)


def test_only_the_input_is_saved_for_backward(impl) -> None:
    x = torch.randn(4096, requires_grad=True)
    saved: list[torch.Tensor] = []
    for kernels in ("eager", "compiled"):
        impl(kernels)
        saved.clear()
        with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
            mila(x, -0.25)
        assert len(saved) == 1 and saved[0].data_ptr() == x.data_ptr(), kernels
    saved.clear()
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        x * torch.tanh(F.softplus(x - 0.25))  # the naive expression, for contrast
    assert sum(t.numel() for t in saved) >= 3 * x.numel()


def test_gradcheck_in_float64_including_beta(impl) -> None:
    impl("eager")
    x = (torch.rand(40, dtype=torch.float64) * 12 - 6).requires_grad_()
    beta = torch.tensor(-0.25, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(mila, (x, beta))
    assert torch.autograd.gradcheck(lambda v: mila(v, 1.5), (x,))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_on_cpu(impl, dtype: torch.dtype) -> None:
    impl("eager")
    x = torch.linspace(-30, 30, 2001)
    leaf = x.to(dtype).requires_grad_()
    out = mila(leaf, -0.25)
    out.sum().backward()
    assert out.dtype == dtype and leaf.grad.dtype == dtype
    value, slope = reference(leaf.detach().float(), -0.25)  # exact maths at the rounded inputs
    tol = {"rtol": 1e-2, "atol": 1e-2} if dtype == torch.bfloat16 else {"rtol": 2e-3, "atol": 2e-3}
    torch.testing.assert_close(out.double(), value, **tol)
    torch.testing.assert_close(leaf.grad.double(), slope, **tol)


def test_auto_compiles_only_after_enough_work(impl, monkeypatch) -> None:
    calls = []
    monkeypatch.setattr(fused_mila, "_compiled", {})
    monkeypatch.setattr(fused_mila, "COMPILE_AFTER_ELEMENTS", 3 * 70_000)
    monkeypatch.setattr(fused_mila, "_compiled_kernel", lambda kind: calls.append(kind) or getattr(fused_mila, f"_{kind}"))
    state = impl("auto")
    small, large = torch.randn(100), torch.randn(70_000)
    for _ in range(10):
        mila(small, 0.5)
    assert calls == []  # small tensors never count
    mila(large, 0.5)
    mila(large, 0.5)
    assert calls == [] and state.used == ["eager"]
    state.where = (2, 7)
    mila(large, 0.5)  # the third large call crosses the threshold
    assert calls == ["forward"]
    assert state.as_summary() == {"impl": "auto", "kernels": ["eager", "compiled"], "compile_after_elements": 210_000,
                              "switched_to_compiled": {"elements": 210_000, "epoch": 2, "step": 7}}  # fmt: skip


def test_auto_counts_per_state_and_a_restored_state_switches_at_the_same_call(impl, monkeypatch) -> None:
    """The switch is a function of one run's own work: a fresh state starts from zero whatever ran
    before it, and a state restored from a checkpoint continues where it was saved."""
    calls = []
    monkeypatch.setattr(fused_mila, "_compiled_kernel", lambda kind: calls.append(kind) or getattr(fused_mila, f"_{kind}"))
    large = torch.randn(70_000)
    first = impl(fused_mila.MilaKernels("auto", after_elements=3 * 70_000))
    for _ in range(3):
        mila(large, 0.5)
    assert calls == ["forward"] and first.switched is not None
    calls.clear()
    second = impl("auto")  # the next run in this process: fresh, so eager again, however much ran before
    second.after_elements = 3 * 70_000
    mila(large, 0.5)
    assert calls == [] and second.elements == 70_000
    saved = second.state_dict()
    resumed = impl(fused_mila.MilaKernels("auto"))  # a new process: its own default threshold ...
    resumed.load_state_dict(saved)  # ... replaced by the checkpoint's, with the work done so far
    mila(large, 0.5)
    assert calls == []
    mila(large, 0.5)  # the third large call of that run, as uninterrupted
    assert calls == ["forward"] and resumed.switched == {"elements": 210_000, "epoch": 0, "step": 0}


def test_backward_uses_the_kernels_of_its_forward(monkeypatch) -> None:
    """A block may end before backward() (benchmarks time forward+backward of a function that picks its impl)."""
    calls = []
    monkeypatch.setattr(fused_mila, "_compiled_kernel", lambda kind: calls.append(kind) or getattr(fused_mila, f"_{kind}"))
    x = torch.randn(1000, requires_grad=True)
    with fused_mila.kernels("compiled") as state:
        out = mila(x, 0.5)
    assert fused_mila.current() is not state
    out.sum().backward()
    assert calls == ["forward", "backward"]


def test_auto_falls_back_to_eager_when_compiling_fails(impl, monkeypatch) -> None:
    def broken(*args):
        raise RuntimeError("no C++ compiler")

    monkeypatch.setattr(fused_mila, "_compiled_kernel", lambda kind: broken)
    monkeypatch.setattr(fused_mila, "_compile_failed", False)
    state = impl(fused_mila.MilaKernels("auto", after_elements=0))
    x = torch.randn(1 << 17)
    torch.testing.assert_close(mila(x, 0.0), F.mish(x), rtol=1e-6, atol=1e-7)
    assert fused_mila._compile_failed and state.as_summary()["compile_failed"] and state.used == ["eager"]
    impl("compiled")
    with pytest.raises(RuntimeError, match="no C\\+\\+ compiler"):
        mila(x, 0.0)


def test_mish_uses_the_fused_kernel_only_where_it_is_compiled(impl) -> None:
    x = torch.randn(1 << 17) * 4
    impl("eager")
    assert torch.equal(mish(x), F.mish(x))  # the native kernel
    impl("compiled")
    torch.testing.assert_close(mish(x), F.mish(x), rtol=1e-6, atol=1e-6)


def test_learnable_beta_is_a_trained_parameter() -> None:
    make = activation_factory({"name": "mila", "beta": -0.25, "learnable_beta": True, "beta_init": 1.0})
    first, second = make(), make()
    assert [n for n, _ in first.named_parameters()] == ["learned.beta"]
    assert first.learned["beta"] is not second.learned["beta"]  # one per module
    assert first.params == {"beta": 1.0}
    x = torch.randn(256)
    optimizer = torch.optim.SGD(first.parameters(), lr=0.1)
    loss = (first(x) - x).pow(2).mean()  # pulls the curve toward the identity: β should grow
    loss.backward()
    assert first.learned["beta"].grad is not None and first.learned["beta"].grad.item() < 0
    optimizer.step()
    assert first.params["beta"] > 1.0


def test_learned_beta_gradient_matches_autograd_of_the_naive_form() -> None:
    x = torch.randn(500, dtype=torch.float64)
    beta = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    (mila(x, beta) * x.cos()).sum().backward()
    ours = beta.grad.clone()
    beta.grad = None
    (x * torch.tanh(F.softplus(x + beta)) * x.cos()).sum().backward()
    torch.testing.assert_close(ours, beta.grad, rtol=1e-10, atol=1e-12)


def test_prelu_alpha_is_always_learned() -> None:
    module = Activation("prelu")
    assert [n for n, _ in module.named_parameters()] == ["learned.alpha"] and module.params == {"alpha": 0.0}
