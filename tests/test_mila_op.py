"""Mila's custom operators (activations/kernels/op.py): torch.library's own checks, the kernel each
device dispatches to, and torch.compile through a model with Mila: no graph break, and the same
gradients as eager (torch 2.11 gave every layer before a traced autograd.Function a zero gradient,
pytorch/pytorch#180642, so compiled runs silently did not learn)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mila_bench.activations import Activation, fused_mila
from mila_bench.activations.kernels import op, triton_mila


def samples() -> list[tuple]:
    x = torch.randn(6, 5, dtype=torch.float32, requires_grad=True)
    cl = torch.randn(2, 3, 4, 5).contiguous(memory_format=torch.channels_last).requires_grad_()
    beta = torch.tensor(0.4, requires_grad=True)
    return [(op.mila_op, (x, -0.25)), (op.mila_op, (cl, 1.0)), (op.mila_tensor_beta_op, (x, beta)),
            (op.mila_tensor_beta_op, (cl, beta)), (op.mila_backward_op, (torch.randn(6, 5), x.detach(), 0.5)),
            (op.mila_tensor_beta_backward_op, (torch.randn(6, 5), x.detach(), beta.detach()))]  # fmt: skip


@pytest.mark.parametrize("index", range(6))
def test_opcheck(index: int) -> None:
    """Schema, fake (meta) implementation, autograd registration and AOT dispatch, as torch.library checks them."""
    operator, args = samples()[index]
    torch.library.opcheck(operator, args)


def test_each_device_has_its_kernel() -> None:
    for name in ("mila", "mila_tensor_beta", "mila_backward", "mila_tensor_beta_backward"):
        qualified = f"mila_bench::{name}"
        assert torch._C._dispatch_has_kernel_for_dispatch_key(qualified, "CUDA")  # the Triton pair
        assert torch._C._dispatch_has_kernel_for_dispatch_key(qualified, "CompositeExplicitAutograd")  # every other device
        assert torch._C._dispatch_has_kernel_for_dispatch_key(qualified, "Meta")  # the fake one: shapes for compile


def test_the_cpu_runs_the_cpu_kernels_and_records_them() -> None:
    x = torch.randn(300, requires_grad=True)
    with fused_mila.kernels("eager") as state:
        op.mila_op(x, 0.5).sum().backward()
    assert state.used == ["eager"]
    assert triton_mila.available()  # the CUDA kernels would be there: torch's Linux builds ship Triton


def test_triton_runs_only_for_auto(monkeypatch) -> None:
    """On CUDA, ``activation.impl=auto`` takes the Triton kernels (and records them); eager and
    compiled keep the kernels they name."""
    x = torch.empty(4)
    for impl, expected in (("auto", True), ("eager", False), ("compiled", False)):
        with fused_mila.kernels(impl) as state:
            assert op._triton(x) is expected
        assert state.used == (["triton"] if expected else [])
    monkeypatch.setattr(triton_mila, "available", lambda: False)
    with fused_mila.kernels("auto"):
        assert op._triton(x) is False


class Net(nn.Module):
    def __init__(self, learn_beta: bool) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.act = Activation("mila", learn=["beta"] if learn_beta else [], beta=-0.25)
        self.fc = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.act(self.bn(self.conv(x))).mean(dim=(2, 3)))


@pytest.mark.parametrize("impl", ["auto", "eager"])
@pytest.mark.parametrize("learn_beta", [False, True], ids=["float-beta", "learned-beta"])
def test_compiled_model_has_no_graph_break_and_eager_gradients(learn_beta: bool, impl: str) -> None:
    """``auto``: Mila's formula traced for Inductor to fuse; ``eager``: the operator, opaque. Both
    one graph, both the eager gradients, each recorded as the kernel it is."""
    torch.manual_seed(0)
    model, x = Net(learn_beta), torch.randn(4, 3, 6, 6)
    with fused_mila.kernels(impl):
        explained = torch._dynamo.explain(model)(x)
    assert explained.graph_count == 1 and explained.graph_break_count == 0, explained.break_reasons
    graph = "\n".join(str(g.graph) for g in explained.graphs)
    assert ("mila_bench.mila" in graph) is (impl != "auto"), graph  # the operator only where the impl names kernels

    def gradients(run) -> dict[str, torch.Tensor]:
        model.zero_grad(set_to_none=True)
        run(x).square().sum().backward()
        return {name: p.grad.clone() for name, p in model.named_parameters()}

    torch._dynamo.reset()
    with fused_mila.kernels(impl):
        eager = gradients(model)
    compiled_model = torch.compile(model)
    with fused_mila.kernels(impl) as state:
        compiled = gradients(compiled_model)
    assert state.used == (["inductor"] if impl == "auto" else ["eager"])
    with fused_mila.kernels(impl) as later:  # a cached graph, a new run's state: recorded there too
        gradients(compiled_model)
    assert later.used == state.used
    assert set(compiled) == set(eager)
    for name in eager:
        assert eager[name].abs().max() > 0, name  # every layer, the ones before Mila included, learns
        torch.testing.assert_close(compiled[name], eager[name], rtol=1e-4, atol=1e-6, msg=name)
