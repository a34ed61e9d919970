"""ResNet v1 and v2 for 32×32 images, laid out as in the Keras CIFAR-10 ResNet example.

The published CIFAR tables were made with that example, so its details are kept: v1 is
6n+2 layers of post-activation basic blocks (16/32/64 filters); v2 is 9n+2 layers of
pre-activation bottleneck blocks (16→64, 64→128, 128→256); both end in global average
pooling and one dense layer. Convolutions keep their bias and pad like Keras' ``'same'``
(for a strided 3×3 that is 0 before and 1 after, not 1 on both sides: see
:func:`same_padding`), the 1×1 projection shortcuts have no batch norm, kernels start from
Keras' truncated He normal, batch norm uses Keras' epsilon 1e-3 and momentum 0.99, and
``kernel_l2`` reproduces Keras' ``l2(1e-4)`` kernel regularizer (see
:meth:`ResNet.param_groups` and :meth:`ResNet.kernel_penalty`). Modules are registered in
forward order, so ``state_dict()`` lists them as the data flows. Every activation is a fresh
module from the registry factory, so ``activation=`` and ``activation.beta=`` apply
throughout. ``tests/test_keras_peer.py`` checks all of it against the example in Keras.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import torch.nn.functional as F
from torch import Tensor, nn

from mila_bench.models.checks import DEPTHS, check_depth  # noqa: F401  (DEPTHS: the published depths)

LAYERS_PER_BLOCK = {1: 6, 2: 9}  # depth = LAYERS_PER_BLOCK * n + 2
MakeActivation = Callable[[], nn.Module]


def batch_norm(channels: int) -> nn.BatchNorm2d:
    """Keras' BatchNormalization defaults: epsilon 1e-3, moving average momentum 0.99."""
    return nn.BatchNorm2d(channels, eps=1e-3, momentum=0.01)


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """Keras/TF ``padding='same'`` along one axis of ``size`` pixels: (before, after).

    The output has ⌈size/stride⌉ pixels, which takes max((⌈n/s⌉ − 1)·s + k − n, 0) pixels of
    padding in all; an odd total puts the extra pixel after (bottom/right). A stride-2 3×3 on
    32 pixels gets (0, 1), where a symmetric ``padding=1`` would shift every window up-left.
    """
    total = max((-(-size // stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class SameConv2d(nn.Conv2d):
    """``Conv2D(padding='same')`` of Keras: symmetric ``kernel // 2`` where that is the same thing
    (stride 1, or 1×1 kernels, which never pad), else the padding of :func:`same_padding`."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1) -> None:
        pads_itself = stride > 1 and kernel > 1
        super().__init__(c_in, c_out, kernel, stride=stride, padding=0 if pads_itself else kernel // 2, bias=True)
        self.pads_itself = pads_itself

    def extra_repr(self) -> str:
        return super().extra_repr() + (", padding='same' (extra pixel bottom/right)" if self.pads_itself else "")

    def forward(self, x: Tensor) -> Tensor:
        if self.pads_itself:
            top, bottom = same_padding(x.shape[-2], self.kernel_size[0], self.stride[0])
            left, right = same_padding(x.shape[-1], self.kernel_size[1], self.stride[1])
            x = F.pad(x, (left, right, top, bottom))
        return super().forward(x)


def conv(c_in: int, c_out: int, kernel: int, stride: int = 1) -> SameConv2d:
    return SameConv2d(c_in, c_out, kernel, stride)


def conv_unit(
    c_in: int, c_out: int, kernel: int, stride: int, make_activation: MakeActivation | None, conv_first: bool, bn: bool = True
) -> nn.Sequential:
    """Keras' ``resnet_layer``: conv→BN→act (v1) or BN→act→conv (v2); BN or act may be left out."""
    norm = [batch_norm(c_out if conv_first else c_in)] if bn else []
    act = [make_activation()] if make_activation is not None else []
    layer = [conv(c_in, c_out, kernel, stride)]
    return nn.Sequential(*(layer + norm + act if conv_first else norm + act + layer))


class BasicBlock(nn.Module):
    """v1: two 3×3 conv units, identity (or strided 1×1 projection) shortcut, activation after the sum."""

    def __init__(self, c_in: int, c_out: int, stride: int, make_activation: MakeActivation) -> None:
        super().__init__()
        self.residual = nn.Sequential(
            conv_unit(c_in, c_out, 3, stride, make_activation, conv_first=True),
            conv_unit(c_out, c_out, 3, 1, None, conv_first=True),
        )
        self.shortcut = conv(c_in, c_out, 1, stride) if stride != 1 or c_in != c_out else nn.Identity()
        self.activation = make_activation()

    def forward(self, x: Tensor) -> Tensor:
        return self.activation(self.residual(x) + self.shortcut(x))


class BottleneckBlock(nn.Module):
    """v2: BN→act→1×1, BN→act→3×3, BN→act→1×1 (×4 width in stage 1, ×2 after), sum without activation.

    The very first block of the network skips its leading BN→act, since the stem's output
    has just been through them.
    """

    def __init__(
        self, c_in: int, c_mid: int, c_out: int, stride: int, make_activation: MakeActivation, first: bool
    ) -> None:
        super().__init__()
        self.residual = nn.Sequential(
            conv_unit(c_in, c_mid, 1, stride, None if first else make_activation, conv_first=False, bn=not first),
            conv_unit(c_mid, c_mid, 3, 1, make_activation, conv_first=False),
            conv_unit(c_mid, c_out, 1, 1, make_activation, conv_first=False),
        )
        self.shortcut = conv(c_in, c_out, 1, stride) if stride != 1 or c_in != c_out else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.residual(x) + self.shortcut(x)


class ResNet(nn.Module):
    """Stem, three stages of ``n`` blocks (stride 2 at the start of stages 2 and 3), pooling, dense."""

    def __init__(
        self, depth: int, version: int, make_activation: MakeActivation, in_channels: int = 3,
        num_classes: int = 10, kernel_l2: float = 0.0,
    ) -> None:  # fmt: skip
        super().__init__()
        check_depth(depth, version)
        n = (depth - 2) // LAYERS_PER_BLOCK[version]
        self.depth, self.version, self.kernel_l2 = depth, version, kernel_l2
        blocks: list[nn.Module] = []
        if version == 1:
            self.stem = conv_unit(in_channels, 16, 3, 1, make_activation, conv_first=True)
            c_in = 16
            for stage, width in enumerate((16, 32, 64)):
                for i in range(n):
                    stride = 2 if stage > 0 and i == 0 else 1
                    blocks.append(BasicBlock(c_in, width, stride, make_activation))
                    c_in = width
            head: nn.Module = nn.Identity()
        else:
            self.stem = conv_unit(in_channels, 16, 3, 1, make_activation, conv_first=True)
            c_in = 16
            for stage, c_mid in enumerate((16, 64, 128)):
                c_out = c_mid * (4 if stage == 0 else 2)
                for i in range(n):
                    stride = 2 if stage > 0 and i == 0 else 1
                    blocks.append(BottleneckBlock(c_in, c_mid, c_out, stride, make_activation, first=stage == 0 and i == 0))
                    c_in = c_out
            head = nn.Sequential(batch_norm(c_in), make_activation())
        self.blocks = nn.Sequential(*blocks)
        self.head = head  # registered after the blocks: state_dict() follows the forward pass
        self.fc = nn.Linear(c_in, num_classes)
        self.apply(_keras_init)

    def forward(self, x: Tensor) -> Tensor:
        x = self.head(self.blocks(self.stem(x)))
        # Global average pooling as a mean: AdaptiveAvgPool2d's CUDA backward has no deterministic
        # implementation, so trainer.deterministic=true would stop a CUDA run at its first step.
        return self.fc(x.mean(dim=(2, 3)))

    def kernels(self) -> list[nn.Parameter]:
        """The conv kernels, which Keras' example regularizes (not biases, BN or the dense layer)."""
        return [m.weight for m in self.modules() if isinstance(m, nn.Conv2d)]

    def kernel_penalty(self) -> Tensor | None:
        """Keras' regularization loss ``kernel_l2 · Σ‖kernel‖²``, which Keras adds to its loss and
        val_loss; None for a model without the penalty."""
        if not self.kernel_l2:
            return None
        return self.kernel_l2 * sum(k.detach().double().square().sum() for k in self.kernels())

    def param_groups(self, weight_decay: float) -> list[dict]:
        """Optimizer groups: Keras' ``l2(kernel_l2)`` on conv kernels is weight decay 2·kernel_l2
        on them (the gradient of kernel_l2·Σw²); everything else gets ``weight_decay``."""
        kernels = self.kernels()
        ids = {id(p) for p in kernels}
        rest = [p for p in self.parameters() if id(p) not in ids]
        if not self.kernel_l2:
            return [{"params": kernels + rest, "weight_decay": weight_decay}]
        return [
            {"params": kernels, "weight_decay": weight_decay + 2 * self.kernel_l2},
            {"params": rest, "weight_decay": weight_decay},
        ]


def _keras_init(module: nn.Module) -> None:
    """Keras' ``he_normal``: normal with std √(2/fan_in), truncated at 2 std (rescaled to keep it)."""
    if isinstance(module, (nn.Conv2d, nn.Linear)):
        fan_in = module.weight[0].numel()
        std = math.sqrt(2.0 / fan_in) / 0.87962566103423978
        nn.init.trunc_normal_(module.weight, std=std, a=-2 * std, b=2 * std)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def build_resnet(model_cfg: Mapping, make_activation: MakeActivation, in_channels: int, num_classes: int) -> ResNet:
    """``model=resnet model.depth=D model.version=V``; a wrong depth lists the valid ones."""
    return ResNet(
        model_cfg["depth"], model_cfg["version"], make_activation, in_channels, num_classes,
        float(model_cfg["kernel_l2"]),
    )  # fmt: skip

