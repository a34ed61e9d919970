"""training/packed.py: N models as one batched model, each member training exactly like a lone model."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from torch import nn

from conftest import ROOT
from mila_bench.activations.resolve import Activation
from mila_bench.models.mlp import DemoMLP
from mila_bench.models.resnet import build_resnet
from mila_bench.training.packed import PackedModel, PackOptimizer, groups, why_not_packable


def mlp(seed: int, activation: str = "mila", **params: float) -> nn.Module:
    torch.manual_seed(seed)
    return DemoMLP(Activation(activation, **params))


def resnet20(seed: int, beta: float) -> nn.Module:
    torch.manual_seed(seed)
    cfg = OmegaConf.load(ROOT / "configs" / "model" / "resnet.yaml")
    return build_resnet(cfg, lambda: Activation("mila", beta=beta), 3, 10)


def train_alone(models, optimizers, xs, ys, steps):
    losses = []
    for step in range(steps):
        row = []
        for i, (model, optimizer) in enumerate(zip(models, optimizers)):
            model.train()
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(xs[step][i]), ys[step][i])
            loss.backward()
            optimizer.step()
            row.append(loss.item())
        losses += row
    return losses


def train_packed(pack, optimizer, xs, ys, steps):
    losses = []
    for step in range(steps):
        pack.train()
        optimizer.zero_grad()
        out = pack(xs[step])
        n, batch = ys[step].shape
        loss = F.cross_entropy(out.flatten(0, 1), ys[step].flatten(), reduction="none").view(n, batch).mean(1)
        loss.sum().backward()
        optimizer.step()
        losses += loss.tolist()
    return losses


def data(steps: int, members: int, shape: tuple[int, ...], seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    xs = [torch.randn(members, 16, *shape, generator=g) for _ in range(steps)]
    ys = [torch.randint(0, 10, (members, 16), generator=g) for _ in range(steps)]
    return xs, ys


def max_state_difference(a: nn.Module, b: nn.Module) -> float:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    return max((sa[k].float() - sb[k].float()).abs().max().item() for k in sa)


def test_members_differing_in_seed_beta_and_activation_train_like_lone_models() -> None:
    specs = [(0, "mila", {"beta": -0.25}), (1, "mila", {"beta": 0.5}), (2, "relu", {}), (3, "mila", {"beta": -0.25})]
    lone = [mlp(s, a, **p) for s, a, p in specs]
    members = [mlp(s, a, **p) for s, a, p in specs]
    for a, b in zip(lone, members):
        assert max_state_difference(a, b) == 0  # the same seed builds the same initial weights
    pack = PackedModel(members)
    assert sorted(map(sorted, groups(members))) == [[0, 1, 3], [2]]  # relu has another structure
    xs, ys = data(6, len(specs), (1, 28, 28))
    alone = train_alone(lone, [torch.optim.Adam(m.parameters(), lr=1e-3) for m in lone], xs, ys, 6)
    packed = train_packed(pack, PackOptimizer(pack, [torch.optim.Adam(m.parameters(), lr=1e-3) for m in members]), xs, ys, 6)
    assert packed == pytest.approx(alone, rel=1e-5)
    for a, b in zip(lone, members):
        assert max_state_difference(a, b) < 1e-4
    with torch.no_grad():
        pack.eval()
        for m in lone:
            m.eval()
        x = torch.randn(8, 1, 28, 28)
        assert torch.allclose(pack(x, shared_input=True), torch.stack([m(x) for m in lone]), atol=1e-5)


def test_batchnorm_statistics_are_per_member() -> None:
    lone = [resnet20(0, -0.25), resnet20(1, 0.5)]
    members = [resnet20(0, -0.25), resnet20(1, 0.5)]
    pack = PackedModel(members)
    xs, ys = data(3, 2, (3, 32, 32))
    xs = [x + torch.tensor([0.0, 3.0]).view(2, 1, 1, 1, 1) for x in xs]  # member 1's images are brighter
    train_alone(lone, [torch.optim.SGD(m.parameters(), lr=0.01) for m in lone], xs, ys, 3)
    train_packed(pack, PackOptimizer(pack, [torch.optim.SGD(m.parameters(), lr=0.01) for m in members]), xs, ys, 3)
    means = [dict(m.named_buffers())["stem.1.running_mean"] for m in members]
    assert not torch.allclose(means[0], means[1], atol=1e-2)  # each member saw its own data
    for a, b in zip(lone, members):
        buffers_a, buffers_b = dict(a.named_buffers()), dict(b.named_buffers())
        for name in buffers_a:
            assert torch.allclose(buffers_a[name].float(), buffers_b[name].float(), rtol=1e-4, atol=1e-5), name


def test_members_with_their_own_learning_rates_follow_their_own() -> None:
    lone, members = [mlp(0), mlp(1)], [mlp(0), mlp(1)]
    pack = PackedModel(members)
    lone_opt = [torch.optim.Adam(m.parameters(), lr=lr) for m, lr in zip(lone, (1e-3, 2e-4))]
    member_opt = [torch.optim.Adam(m.parameters(), lr=lr) for m, lr in zip(members, (1e-3, 2e-4))]
    xs, ys = data(4, 2, (1, 28, 28))
    alone = train_alone(lone, lone_opt, xs, ys, 4)
    packed = train_packed(pack, PackOptimizer(pack, member_opt), xs, ys, 4)
    assert packed == pytest.approx(alone, rel=1e-5)
    for a, b in zip(lone, members):
        assert max_state_difference(a, b) < 1e-5


def test_a_members_optimizer_state_is_a_lone_runs_and_reloads_exactly() -> None:
    lone, members = [mlp(0), mlp(1)], [mlp(0), mlp(1)]
    pack = PackedModel(members)
    lone_opt = [torch.optim.Adam(m.parameters(), lr=1e-3) for m in lone]
    optimizer = PackOptimizer(pack, [torch.optim.Adam(m.parameters(), lr=1e-3) for m in members])
    xs, ys = data(6, 2, (1, 28, 28))
    train_alone(lone, lone_opt, xs[:3], ys[:3], 3)
    train_packed(pack, optimizer, xs[:3], ys[:3], 3)
    states = [optimizer.member_state(i) for i in range(2)]
    for state, reference in zip(states, (o.state_dict() for o in lone_opt)):
        assert state["param_groups"] == reference["param_groups"] and state["state"].keys() == reference["state"].keys()
        for k, values in reference["state"].items():
            for name, value in values.items():
                assert state["state"][k][name].shape == value.shape and state["state"][k][name].is_contiguous()
                assert torch.allclose(state["state"][k][name], value, rtol=1e-4, atol=1e-7), (k, name)
    # A copy of the pack continued from those states equals the pack continued directly.
    copies = [copy.deepcopy(m) for m in members]
    again = PackedModel(copies)
    reloaded = PackOptimizer(again, [torch.optim.Adam(m.parameters(), lr=1e-3) for m in copies])
    reloaded.load_member_states(states)
    direct = train_packed(pack, optimizer, xs[3:], ys[3:], 3)
    resumed = train_packed(again, reloaded, xs[3:], ys[3:], 3)
    assert resumed == direct
    for a, b in zip(members, copies):
        assert max_state_difference(a, b) == 0


def test_differing_beta_is_held_per_member_and_left_out_of_the_state_dict() -> None:
    members = [mlp(0, beta=-0.25), mlp(1, beta=0.75)]
    keys = set(members[0].state_dict())
    PackedModel(members)
    assert [m.activation.held for m in members] == [("beta",), ("beta",)]
    assert [m.activation.params["beta"] for m in members] == [-0.25, 0.75]
    assert set(members[0].state_dict()) == keys  # a member's checkpoint is a lone run's
    same = [mlp(0, beta=-0.25), mlp(1, beta=-0.25)]
    PackedModel(same)
    assert [m.activation.held for m in same] == [(), ()]  # one β for all: the float, one kernel call


class DataDependent(nn.Module):
    """Python control flow on a tensor's value: what vmap cannot batch."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x) if x.sum() > 0 else -self.fc(x)


def test_a_model_vmap_cannot_run_is_named_with_the_reason() -> None:
    assert why_not_packable(mlp(0), torch.randn(2, 1, 28, 28)) is None
    reason = why_not_packable(DataDependent(), torch.randn(2, 4))
    assert reason is not None and reason.startswith("torch.func.vmap cannot run it")


def deep_mlp(seed: int, beta: float) -> nn.Module:
    from mila_bench.models.deep_mlp import build_deep_mlp

    torch.manual_seed(seed)
    return build_deep_mlp(6, 32, lambda: Activation("mila", beta=beta), 784, 10)


def resnet20_v2(seed: int, beta: float) -> nn.Module:
    torch.manual_seed(seed)
    cfg = {**OmegaConf.to_container(OmegaConf.load(ROOT / "configs" / "model" / "resnet.yaml")), "version": 2}
    return build_resnet(cfg, lambda: Activation("mila", beta=beta), 3, 10)


@pytest.mark.parametrize(("build", "shape"), [(deep_mlp, (1, 28, 28)), (resnet20_v2, (3, 32, 32))], ids=["deep_mlp", "resnet20_v2"])
def test_the_deep_mlp_and_resnet_v2_pack(build, shape) -> None:
    lone, members = [build(0, -0.25), build(1, 1.0)], [build(0, -0.25), build(1, 1.0)]
    pack = PackedModel(members)
    xs, ys = data(3, 2, shape)
    alone = train_alone(lone, [torch.optim.Adam(m.parameters(), lr=1e-3) for m in lone], xs, ys, 3)
    packed = train_packed(pack, PackOptimizer(pack, [torch.optim.Adam(m.parameters(), lr=1e-3) for m in members]), xs, ys, 3)
    assert packed == pytest.approx(alone, rel=1e-5)


def test_a_learned_beta_gets_each_members_own_gradient() -> None:
    def learned(seed: int, beta: float) -> nn.Module:
        torch.manual_seed(seed)
        return DemoMLP(Activation("mila", learn=("beta",), beta=beta))

    lone, members = [learned(0, -0.25), learned(1, 0.75)], [learned(0, -0.25), learned(1, 0.75)]
    pack = PackedModel(members)
    xs, ys = data(4, 2, (1, 28, 28))
    train_alone(lone, [torch.optim.SGD(m.parameters(), lr=0.5) for m in lone], xs, ys, 4)
    train_packed(pack, PackOptimizer(pack, [torch.optim.SGD(m.parameters(), lr=0.5) for m in members]), xs, ys, 4)
    for a, b in zip(lone, members):
        assert b.activation.params["beta"] == pytest.approx(a.activation.params["beta"], abs=1e-5)
    assert abs(lone[0].activation.params["beta"] + 0.25) > 1e-3  # β moved: its gradient was not zero
