"""Peer test against Keras itself: the Keras example's ResNets (``keras_example.py``, Keras 3 on its
torch backend, no TensorFlow) with their weights copied into ours give the same softmax outputs
and the same val_loss, and have the same parameter counts at every published depth."""

from __future__ import annotations

import os

os.environ["KERAS_BACKEND"] = "torch"  # before keras is imported anywhere in this process

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from keras.layers import BatchNormalization, Conv2D, Dense  # noqa: E402
from torch import nn  # noqa: E402

import keras_example  # noqa: E402
from keras_example import resnet_v1, resnet_v2  # noqa: E402
from mila_bench.activations import fused_mila  # noqa: E402
from mila_bench.activations import get_activation  # noqa: E402
from mila_bench.data.splits import Split  # noqa: E402
from mila_bench.training.engine import evaluate  # noqa: E402
from mila_bench.models.resnet import DEPTHS, ResNet, SameConv2d  # noqa: E402

# Keras reads its torch tensors through numpy's __array__ without the copy keyword: noise, not ours.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")
BETA = -0.25  # Mila at the published default, in both frameworks: a smooth activation everywhere


def keras_mila(x):
    return x * keras.ops.tanh(keras.ops.softplus(x + BETA))


def build_keras(version: int, depth: int, classes: int):
    keras.utils.set_random_seed(depth + version)
    build = resnet_v1 if version == 1 else resnet_v2
    return build((32, 32, 3), depth, keras_mila, classes)


def build_ours(version: int, depth: int, classes: int) -> ResNet:
    return ResNet(depth, version, lambda: get_activation("mila", beta=BETA), num_classes=classes, kernel_l2=1e-4)


def randomise_keras(layers: list, seed: int) -> None:
    """He-normal kernels stay; BN's γ, β and the biases get random values (Keras starts them at 1
    and 0), so that every weight's place in our model matters."""
    rng = np.random.default_rng(seed)
    for layer in layers:
        weights = layer.get_weights()
        if isinstance(layer, BatchNormalization):
            c = weights[0].shape
            layer.set_weights([rng.uniform(0.5, 1.5, c), rng.normal(0, 0.2, c), weights[2], weights[3]])
        elif isinstance(layer, (Conv2D, Dense)):
            layer.set_weights([weights[0], rng.normal(0, 0.05, weights[1].shape)])


def matched(layers: list, ours: ResNet) -> list[tuple[object, nn.Module]]:
    """Keras layers in the order the example applies them, beside our modules in registration order."""
    pairs = []
    for keras_type, torch_type in ((Conv2D, nn.Conv2d), (BatchNormalization, nn.BatchNorm2d), (Dense, nn.Linear)):
        theirs = [l for l in layers if isinstance(l, keras_type)]
        mine = [m for m in ours.modules() if isinstance(m, torch_type)]
        assert len(theirs) == len(mine), keras_type.__name__
        pairs += zip(theirs, mine)
    return pairs


def copy_weights(pairs: list[tuple[object, nn.Module]]) -> None:
    """Keras' weights into ours: kernels (h, w, in, out) → (out, in, h, w), dense (in, out) → (out, in)."""
    for layer, module in pairs:
        weights = layer.get_weights()
        if isinstance(module, nn.BatchNorm2d):
            targets = [module.weight, module.bias, module.running_mean, module.running_var]
        else:
            weights[0] = weights[0].transpose(3, 2, 0, 1) if isinstance(module, nn.Conv2d) else weights[0].T
            targets = [module.weight, module.bias]
        for target, value in zip(targets, weights):
            assert tuple(target.shape) == value.shape, f"{type(layer).__name__}: {tuple(target.shape)} vs {value.shape}"
            with torch.no_grad():
                target.copy_(torch.from_numpy(np.ascontiguousarray(value)))


def calibrate_statistics(pairs: list[tuple[object, nn.Module]], ours: ResNet, images: torch.Tensor) -> None:
    """BN moving statistics of a network that has seen data (Keras starts at mean 0, variance 1,
    which lets a deep random net's outputs blow up into a saturated softmax): the batch
    statistics of ``images`` as our model measures them, set in both models."""
    norms = [m for m in ours.modules() if isinstance(m, nn.BatchNorm2d)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average: one batch gives exactly its statistics
    ours.train()
    with torch.no_grad():
        ours(images)
    ours.eval()
    for layer, module in pairs:
        if isinstance(module, nn.BatchNorm2d):
            module.momentum = 0.01
            gamma, beta, _, _ = layer.get_weights()
            layer.set_weights([gamma, beta, module.running_mean.numpy(), module.running_var.numpy()])


@pytest.fixture(autouse=True)
def eager_mila(monkeypatch: pytest.MonkeyPatch) -> None:
    """Mila's eager kernel: no compile in this test, whatever ran before in the process."""
    monkeypatch.setattr(fused_mila, "_current", fused_mila.MilaKernels("eager"))


def outputs(version: int, depth: int, classes: int = 10):
    """(Keras softmax, our softmax, Keras model, ours, images, labels) on 6 random images.

    Kernels start from He's normal without the truncation (Keras' truncated normal on the torch
    backend takes seconds per model; the weights are copied anyway)."""
    he_untruncated = keras.initializers.VarianceScaling(2.0, "fan_in", "untruncated_normal", seed=depth)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(keras_example, "KERNEL_INITIALIZER", he_untruncated)
        model, layers = build_keras(version, depth, classes)
    randomise_keras(layers, seed=depth)
    ours = build_ours(version, depth, classes)
    pairs = matched(layers, ours)
    copy_weights(pairs)
    rng = np.random.default_rng(1)
    calibrate_statistics(pairs, ours, torch.from_numpy(rng.standard_normal((8, 3, 32, 32)).astype(np.float32)))
    images = rng.standard_normal((6, 32, 32, 3)).astype(np.float32)
    labels = rng.integers(0, classes, 6)
    theirs = keras.ops.convert_to_numpy(model(images, training=False))
    x = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
    with torch.no_grad():
        mine = torch.softmax(ours(x), dim=1).numpy()
    return theirs, mine, model, ours, x, labels


@pytest.mark.parametrize(("version", "depth"), [(1, 20), (1, 56), (2, 20), (2, 56)])
@pytest.mark.slow
def test_softmax_outputs_equal_kerass(version: int, depth: int) -> None:
    theirs, mine, model, ours, x, labels = outputs(version, depth)
    difference = float(np.abs(theirs - mine).max())
    print(f"\nResNet-{depth} v{version}: largest softmax difference to Keras {difference:.2e}")
    assert theirs.shape == mine.shape == (6, 10)
    assert difference <= 1e-5
    assert (1 - theirs.max(axis=1)).min() > 1e-4  # no saturated one-hot row: a 1e-5 difference could show

    # Keras' val_loss: its clipped cross-entropy plus the l2(1e-4) kernel penalty, as evaluate() reports it.
    model.compile(loss="sparse_categorical_crossentropy")
    keras_loss = model.evaluate(x.permute(0, 2, 3, 1).numpy(), labels, batch_size=len(labels), verbose=0)
    ours_loss = evaluate(ours, Split(x, torch.from_numpy(labels)), batch_size=4)
    print(f"ResNet-{depth} v{version}: val_loss Keras {keras_loss:.6f}, ours {ours_loss['keras_val_loss']:.6f}")
    assert ours_loss["keras_val_loss"] == pytest.approx(keras_loss, rel=1e-5)
    assert float(ours.kernel_penalty()) > 1e-3  # a penalty large enough to show if either side left it out

    if version == 1:  # the control: PyTorch's symmetric padding=1 on the strided 3×3 convs is far off
        for module in ours.modules():
            if isinstance(module, SameConv2d) and module.pads_itself:
                module.pads_itself, module.padding = False, (1, 1)
        with torch.no_grad():
            symmetric = torch.softmax(ours(x), dim=1).numpy()
        print(f"ResNet-{depth} v{version}: with symmetric padding {np.abs(theirs - symmetric).max():.2e}")
        assert np.abs(theirs - symmetric).max() > 1e-3


@pytest.mark.parametrize(("version", "depth"), [(v, d) for v, ds in DEPTHS.items() for d in ds])
@pytest.mark.slow
def test_parameter_counts_equal_kerass(version: int, depth: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keras_example, "KERNEL_INITIALIZER", "zeros")  # shapes are all this needs
    for classes in (10, 100):
        model, _ = build_keras(version, depth, classes)
        trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
        moving = sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)
        with torch.device("meta"):
            ours = build_ours(version, depth, classes)
        assert sum(p.numel() for p in ours.parameters() if p.requires_grad) == trainable
        assert sum(b.numel() for n, b in ours.named_buffers() if n.endswith(("running_mean", "running_var"))) == moving
    if (version, depth) == (1, 20):
        assert (trainable, moving) == (273_066 + 90 * 64 + 90, 1_376)  # 100 classes: a larger dense layer
