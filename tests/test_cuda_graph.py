"""training/cuda_graph.py: the warm-up that capture needs leaves no trace; on CUDA, a graphed run equals an eager one."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from mila_bench.activations.resolve import Activation
from mila_bench.models.mlp import sequential_mlp
from mila_bench.training.cuda_graph import GraphedStep


def model_and_optimizer(device: str = "cpu"):
    torch.manual_seed(0)
    model = sequential_mlp(Activation("mila", beta=-0.25)).to(device)  # BatchNorm buffers too
    model.eval()  # no dropout draws: steps are a function of the data alone
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm1d):
            module.train()
    return model, torch.optim.Adam(model.parameters(), lr=1e-3)


def steps(graphed: GraphedStep, batches) -> list[float]:
    return [graphed._eager(x, y).item() for x, y in batches]


def batches(n: int, device: str = "cpu", size: int = 32):
    g = torch.Generator().manual_seed(1)
    return [(torch.randn(size, 1, 28, 28, generator=g).to(device), torch.randint(0, 10, (size,), generator=g).to(device)) for _ in range(n)]


@pytest.mark.parametrize("resumed", [False, True], ids=["fresh", "resumed"])
def test_undoing_the_warm_up_restores_weights_buffers_and_optimizer_state(resumed: bool) -> None:
    model, optimizer = model_and_optimizer()
    graphed = GraphedStep(model, optimizer, lambda x, y: F.cross_entropy(model(x), y))
    data = batches(6)
    if resumed:  # an optimizer with state already (a resumed run)
        steps(graphed, data[:2])
    reference = copy.deepcopy((model, optimizer))
    snapshot = graphed._snapshot()
    steps(graphed, data[2:4])  # what warm-up does: real steps
    graphed._restore(snapshot)
    ref_model, ref_optimizer = reference
    ref_graphed = GraphedStep(ref_model, ref_optimizer, lambda x, y: F.cross_entropy(ref_model(x), y))
    assert steps(graphed, data[4:]) == steps(ref_graphed, data[4:])  # bit for bit as if never warmed up
    for a, b in zip(model.state_dict().values(), ref_model.state_dict().values()):
        assert torch.equal(a, b)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA device")
@pytest.mark.parametrize("compiled", [False, True], ids=["eager-model", "compiled-model"])
def test_a_graphed_step_trains_like_the_eager_step_and_follows_the_learning_rate(compiled: bool) -> None:
    """The captured step equals the eager one, a torch.compile'd model's (trainer.compile=true with
    trainer.cuda_graph=true: Inductor's kernels inside the captured step) as well."""
    model, optimizer = model_and_optimizer("cuda")
    twin, twin_optimizer = copy.deepcopy((model, optimizer))
    run = torch.compile(model) if compiled else model
    graphed = GraphedStep(model, optimizer, lambda x, y: F.cross_entropy(run(x), y))
    eager = GraphedStep(twin, twin_optimizer, lambda x, y: F.cross_entropy(twin(x), y))
    data = batches(8, "cuda") + batches(1, "cuda", size=7)  # a partial last batch runs eagerly
    ours = [graphed(x, y).item() for x, y in data[:4]]
    theirs = steps(eager, data[:4])
    for opt in (optimizer, twin_optimizer):
        for group in opt.param_groups:
            group["lr"] = 1e-4  # a schedule's cut: captured again
    ours += [graphed(x, y).item() for x, y in data[4:]]
    theirs += steps(eager, data[4:])
    assert ours == pytest.approx(theirs, rel=1e-3 if compiled else 1e-4)
    assert graphed.lrs == [1e-4]
