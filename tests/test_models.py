"""The demo MLP in both layouts, built by name with its activation from the registry."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mila_bench.activations import Activation, get_activation
from mila_bench.errors import UsageError
from mila_bench.models import MODELS, build_model
from mila_bench.models.mlp import INITIALIZATIONS, DemoMLP

INPUT_SHAPE = (1, 28, 28)
NUM_CLASSES = 10
LAYOUTS = ("class", "sequential")
WIDTHS = (784, 256, 128, 64, 10)  # the original demo's layers (shared/reference/original_demo.md)


def make_mila(beta: float = -0.25):
    return lambda: get_activation("mila", beta=beta)


def build(initialization: str = "class", activation: str = "mila", seed: int | None = 0, **params: float) -> nn.Module:
    if seed is not None:
        torch.manual_seed(seed)
    return build_model(
        {"name": "mlp", "initialization": initialization},
        lambda: get_activation(activation, **params),
        INPUT_SHAPE,
        NUM_CLASSES,
    )


def batch(n: int = 8, seed: int = 1) -> torch.Tensor:
    return torch.rand(n, *INPUT_SHAPE, generator=torch.Generator().manual_seed(seed))


def activation_of(model: nn.Module) -> nn.Module:
    """The registry activation inside either layout (the class attribute, or the third layer)."""
    return model.activation if isinstance(model, DemoMLP) else model[2]


def assert_log_probabilities(out: torch.Tensor, n: int) -> None:
    assert out.shape == (n, NUM_CLASSES)
    assert torch.isfinite(out).all()
    assert (out <= 1e-6).all()
    torch.testing.assert_close(out.exp().sum(dim=1), torch.ones(n), rtol=0, atol=1e-5)


# ------------------------------------------------------------------------ class layout


def test_class_layout_structure() -> None:
    model = build_model({"name": "mlp", "initialization": "class"}, make_mila(), INPUT_SHAPE, NUM_CLASSES)
    assert type(model) is DemoMLP
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == list(zip(WIDTHS, WIDTHS[1:]))
    assert [model.fc1, model.fc2, model.fc3, model.fc4] == linears
    assert isinstance(model.activation, Activation)
    assert model.activation.name == "mila"
    assert model.activation.params == {"beta": -0.25}
    assert not any(isinstance(m, (nn.BatchNorm1d, nn.Dropout)) for m in model.modules())


def test_class_layout_outputs_log_probabilities() -> None:
    model = build_model({"name": "mlp", "initialization": "class"}, make_mila(), INPUT_SHAPE, NUM_CLASSES)
    out = model(batch(8))
    assert_log_probabilities(out, 8)


def test_initialization_defaults_to_class() -> None:
    from mila_bench.config import compose

    model = build_model(compose(["model=mlp"]).model, make_mila(), INPUT_SHAPE, NUM_CLASSES)  # the default is the yaml's
    assert type(model) is DemoMLP


@pytest.mark.parametrize("layout", LAYOUTS)
def test_parameter_count_is_the_original_architecture(layout: str) -> None:
    """Weights and biases of 784→256→128→64→10, plus the sequential layout's two BatchNorm1d (γ, β each):
    nothing more is trained (a learned β or a stray layer would show here)."""
    linear = sum(n_in * n_out + n_out for n_in, n_out in zip(WIDTHS, WIDTHS[1:]))
    batch_norm = 2 * (WIDTHS[2] + WIDTHS[3]) if layout == "sequential" else 0
    model = build(layout)
    assert sum(p.numel() for p in model.parameters()) == linear + batch_norm
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == linear + batch_norm
    layers = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in layers] == list(zip(WIDTHS, WIDTHS[1:]))


def test_input_shape_sets_first_layer() -> None:
    model = build_model({"name": "mlp", "initialization": "class"}, make_mila(), (3, 8, 8), 5)
    assert (model.fc1.in_features, model.fc4.out_features) == (192, 5)
    assert model(torch.rand(4, 3, 8, 8)).shape == (4, 5)


# ------------------------------------------------------------------- sequential layout


def test_sequential_layout_structure() -> None:
    model = build_model({"name": "mlp", "initialization": "sequential"}, make_mila(), INPUT_SHAPE, NUM_CLASSES)
    assert type(model) is nn.Sequential
    expected_types = [
        nn.Flatten,
        nn.Linear,
        Activation,
        nn.Linear,
        nn.BatchNorm1d,
        nn.ReLU,
        nn.Dropout,
        nn.Linear,
        nn.BatchNorm1d,
        nn.ReLU,
        nn.Linear,
        nn.LogSoftmax,
    ]
    assert [type(m) for m in model] == expected_types
    assert (model[1].in_features, model[1].out_features) == (784, 256)
    assert model[2].name == "mila" and model[2].params == {"beta": -0.25}
    assert (model[3].in_features, model[3].out_features) == (256, 128)
    assert model[4].num_features == 128
    assert model[6].p == pytest.approx(0.3)
    assert (model[7].in_features, model[7].out_features) == (128, 64)
    assert model[8].num_features == 64
    assert (model[10].in_features, model[10].out_features) == (64, 10)
    assert model[11].dim == 1


@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
def test_sequential_layout_outputs_log_probabilities(train: bool) -> None:
    model = build_model({"name": "mlp", "initialization": "sequential"}, make_mila(), INPUT_SHAPE, NUM_CLASSES)
    model.train(train)
    assert_log_probabilities(model(batch(8)), 8)


# ---------------------------------------------------------------------- both layouts


@pytest.mark.parametrize("beta", [-0.25, 1.0, 0.0, -3.5])
def test_both_layouts_use_the_same_beta(beta: float) -> None:
    """The original demo's class path silently used beta=1 while sequential used -0.25."""
    acts = [activation_of(build(layout, "mila", beta=beta)) for layout in LAYOUTS]
    for act in acts:
        assert isinstance(act, Activation)
        assert act.name == "mila"
        assert act.params == {"beta": beta}
    # Same function too, not just the same recorded parameter.
    x = torch.linspace(-5, 5, 41)
    assert torch.equal(acts[0](x), acts[1](x))


@pytest.mark.parametrize("layout", LAYOUTS)
def test_each_build_gets_a_fresh_activation(layout: str) -> None:
    calls: list[nn.Module] = []

    def factory() -> nn.Module:
        calls.append(get_activation("mila"))
        return calls[-1]

    model = build_model({"name": "mlp", "initialization": layout}, factory, INPUT_SHAPE, NUM_CLASSES)
    assert len(calls) == 1
    assert activation_of(model) is calls[0]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_activation_receives_fc1_output_and_feeds_fc2(layout: str) -> None:
    model = build(layout).eval()
    act = activation_of(model)
    fc1, fc2 = (model.fc1, model.fc2) if layout == "class" else (model[1], model[3])
    seen: dict[str, torch.Tensor] = {}

    def on_fc1(_m, _inp, out):
        seen["fc1_out"] = out.detach().clone()

    def on_act(_m, inp, out):
        seen["act_in"] = inp[0].detach().clone()
        seen["act_out"] = out.detach().clone()

    def before_fc2(_m, inp):
        seen["fc2_in"] = inp[0].detach().clone()

    handles = [
        fc1.register_forward_hook(on_fc1),
        act.register_forward_hook(on_act),
        fc2.register_forward_pre_hook(before_fc2),
    ]
    try:
        x = batch(8)
        model(x)
    finally:
        for h in handles:
            h.remove()

    assert "act_in" in seen, "the activation module was never called in forward()"
    assert seen["act_in"].shape == (8, 256)
    assert torch.equal(seen["act_in"], seen["fc1_out"])
    with torch.no_grad():
        torch.testing.assert_close(seen["act_in"], fc1(x.flatten(1)))
        torch.testing.assert_close(seen["act_out"], get_activation("mila")(seen["act_in"]))
    assert torch.equal(seen["fc2_in"], seen["act_out"])


@pytest.mark.parametrize("layout", LAYOUTS)
def test_activation_choice_changes_the_output(layout: str) -> None:
    x = batch(8)
    mila = build(layout, "mila", seed=0).eval()
    relu = build(layout, "relu", seed=0).eval()
    # Same seed, so the weights are identical and only the activation differs.
    for (name_a, p_a), (name_b, p_b) in zip(mila.state_dict().items(), relu.state_dict().items()):
        assert name_a == name_b and torch.equal(p_a, p_b)
    with torch.no_grad():
        assert not torch.allclose(mila(x), relu(x))


def test_replacing_the_activation_with_identity_changes_the_output() -> None:
    model = build("class").eval()
    x = batch(8)
    with torch.no_grad():
        before = model(x)
        model.activation = nn.Identity()
        after = model(x)
    assert not torch.allclose(before, after)


def test_seeded_builds_are_identical() -> None:
    a, b = build("class", seed=3), build("class", seed=3)
    x = batch(4)
    with torch.no_grad():
        assert torch.equal(a(x), b(x))


@pytest.mark.parametrize("layout", LAYOUTS)
def test_gradients_reach_fc1(layout: str) -> None:
    """fc1's gradient (through the activation and every later layer) against central differences of the
    loss, in float64 and eval mode (dropout off, BatchNorm fixed), at the entries with the largest gradient."""
    model = build(layout).double().eval()
    first = model.fc1 if layout == "class" else model[1]
    x, labels = batch(8).double(), torch.arange(8) % NUM_CLASSES
    loss = lambda: nn.functional.nll_loss(model(x), labels)  # noqa: E731
    loss().backward()
    grad = first.weight.grad.clone()
    assert torch.isfinite(grad).all()
    h = 1e-6
    with torch.no_grad():
        for index in grad.flatten().abs().topk(5).indices.tolist():
            row, col = divmod(index, first.weight.shape[1])
            first.weight[row, col] += h
            up = loss().item()
            first.weight[row, col] -= 2 * h
            down = loss().item()
            first.weight[row, col] += h
            assert grad[row, col].item() == pytest.approx((up - down) / (2 * h), rel=1e-5)


# ----------------------------------------------------------------------------- errors


def test_unknown_initialization_is_a_usage_error() -> None:
    with pytest.raises(UsageError) as info:
        build_model({"name": "mlp", "initialization": "banana"}, make_mila(), INPUT_SHAPE, NUM_CLASSES)
    message = str(info.value)
    assert "banana" in message
    for allowed in INITIALIZATIONS:
        assert allowed in message
    assert set(INITIALIZATIONS) == {"class", "sequential"}


def test_unknown_model_name_is_a_usage_error() -> None:
    with pytest.raises(UsageError) as info:
        build_model({"name": "transformer"}, make_mila(), INPUT_SHAPE, NUM_CLASSES)
    message = str(info.value)
    assert "transformer" in message
    for allowed in MODELS:
        assert allowed in message
    assert "mlp" in MODELS
