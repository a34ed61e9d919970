"""The published tables' models as the Keras CIFAR-10 ResNet example builds them (``resnet_layer``,
``resnet_v1``, ``resnet_v2`` of keras-team's ``examples/cifar10_resnet.py``), written for Keras 3.

Kept as the example has them (``padding='same'``, ``he_normal``, ``l2(1e-4)`` on conv kernels,
default BatchNormalization, projection shortcuts without BN, average pooling over the last 8×8,
softmax dense layer), except that the activation is an argument, as in the published runs, and
every layer is appended to ``layers`` in the order it is applied, so weights can be matched
with ours. Import after setting ``KERAS_BACKEND``.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
from keras.layers import Activation, AveragePooling2D, BatchNormalization, Conv2D, Dense, Flatten, Input
from keras.models import Model
from keras.regularizers import l2

#: The example's "he_normal"; a test that only counts parameters may swap in "zeros", since
#: Keras' truncated normal on the torch backend takes seconds for the deep models.
KERNEL_INITIALIZER = "he_normal"


def resnet_layer(
    inputs, layers: list, activation: Callable | None, num_filters: int = 16, kernel_size: int = 3, strides: int = 1,
    batch_normalization: bool = True, conv_first: bool = True,
):  # fmt: skip
    conv = Conv2D(
        num_filters, kernel_size=kernel_size, strides=strides, padding="same",
        kernel_initializer=KERNEL_INITIALIZER, kernel_regularizer=l2(1e-4),
    )  # fmt: skip
    x = inputs

    def apply(layer, x):
        layers.append(layer)
        return layer(x)

    if conv_first:
        x = apply(conv, x)
        if batch_normalization:
            x = apply(BatchNormalization(), x)
        if activation is not None:
            x = apply(Activation(activation), x)
    else:
        if batch_normalization:
            x = apply(BatchNormalization(), x)
        if activation is not None:
            x = apply(Activation(activation), x)
        x = apply(conv, x)
    return x


def resnet_v1(input_shape, depth: int, activation: Callable, num_classes: int = 10) -> tuple[Model, list]:
    if (depth - 2) % 6 != 0:
        raise ValueError("depth should be 6n+2 (eg 20, 32, 44 in [a])")
    layers: list = []
    num_filters = 16
    num_res_blocks = int((depth - 2) / 6)
    inputs = Input(shape=input_shape)
    x = resnet_layer(inputs, layers, activation)
    for stack in range(3):
        for res_block in range(num_res_blocks):
            strides = 1
            if stack > 0 and res_block == 0:  # first layer but not first stack
                strides = 2  # downsample
            y = resnet_layer(x, layers, activation, num_filters=num_filters, strides=strides)
            y = resnet_layer(y, layers, None, num_filters=num_filters)
            if stack > 0 and res_block == 0:  # linear projection residual shortcut connection to match changed dims
                x = resnet_layer(
                    x, layers, None, num_filters=num_filters, kernel_size=1, strides=strides, batch_normalization=False
                )
            x = keras.layers.add([x, y])
            x = Activation(activation)(x)
        num_filters *= 2
    x = AveragePooling2D(pool_size=8)(x)
    y = Flatten()(x)
    dense = Dense(num_classes, activation="softmax", kernel_initializer=KERNEL_INITIALIZER)
    layers.append(dense)
    return Model(inputs=inputs, outputs=dense(y)), layers


def resnet_v2(input_shape, depth: int, activation: Callable, num_classes: int = 10) -> tuple[Model, list]:
    if (depth - 2) % 9 != 0:
        raise ValueError("depth should be 9n+2 (eg 56 or 110 in [b])")
    layers: list = []
    num_filters_in = 16
    num_res_blocks = int((depth - 2) / 9)
    inputs = Input(shape=input_shape)
    x = resnet_layer(inputs, layers, activation, num_filters=num_filters_in, conv_first=True)
    for stage in range(3):
        for res_block in range(num_res_blocks):
            block_activation = activation
            batch_normalization = True
            strides = 1
            if stage == 0:
                num_filters_out = num_filters_in * 4
                if res_block == 0:  # first layer and first stage
                    block_activation = None
                    batch_normalization = False
            else:
                num_filters_out = num_filters_in * 2
                if res_block == 0:  # first layer but not first stage
                    strides = 2  # downsample
            y = resnet_layer(
                x, layers, block_activation, num_filters=num_filters_in, kernel_size=1, strides=strides,
                batch_normalization=batch_normalization, conv_first=False,
            )  # fmt: skip
            y = resnet_layer(y, layers, activation, num_filters=num_filters_in, conv_first=False)
            y = resnet_layer(y, layers, activation, num_filters=num_filters_out, kernel_size=1, conv_first=False)
            if res_block == 0:  # linear projection residual shortcut connection to match changed dims
                x = resnet_layer(
                    x, layers, None, num_filters=num_filters_out, kernel_size=1, strides=strides,
                    batch_normalization=False,
                )  # fmt: skip
            x = keras.layers.add([x, y])
        num_filters_in = num_filters_out
    bn = BatchNormalization()
    layers.append(bn)
    x = Activation(activation)(bn(x))
    x = AveragePooling2D(pool_size=8)(x)
    y = Flatten()(x)
    dense = Dense(num_classes, activation="softmax", kernel_initializer=KERNEL_INITIALIZER)
    layers.append(dense)
    return Model(inputs=inputs, outputs=dense(y)), layers
