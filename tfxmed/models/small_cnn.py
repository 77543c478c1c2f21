"""A small VGG-style CNN for fast tests and quick experiments (optionally with CSAM)."""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import layers

from tfxmed.models.layers import channel_spatial_attention, classification_head
from tfxmed.models.resnet_attention import BN_MOMENTUM
from tfxmed.models.spec import ModelSpec, declare_spec

__all__ = ["small_cnn", "small_cnn_spec"]


def small_cnn_spec(attention: bool = False, blocks: Sequence[int] = ()) -> ModelSpec:
    """The layers `small_cnn(attention=..., blocks=...)` declares: CSAM's output and spatial map, else the
    last conv's ReLU; the earlier stages' last ReLUs (finer grids) are candidates for `explain.method: auto`."""
    stages = tuple(f"conv{stage + 1}_{count}_relu" for stage, count in enumerate(blocks[:-1]))
    if attention:
        return ModelSpec(explain_layer="csam", attention_layer="csam_spatial",
                         candidate_layers=(*stages, "last_conv_relu"))
    return ModelSpec(explain_layer="last_conv_relu", candidate_layers=stages)


def small_cnn(
    input_shape: Sequence[int],
    num_classes: int,
    multi_label: bool = False,
    attention: bool = False,
    dropout: float = 0.3,
    width: int = 16,
    blocks: Sequence[int] = (1, 1, 1),
    name: str = "small_cnn",
    kernel_size: int = 3,
    pooling: str = "avg",
    lse_r: float = 5.0,
) -> keras.Model:
    """Stages of [conv k×k-BN-ReLU] × blocks[i] with max pooling between; last conv is `last_conv`.

    CSAM (if `attention`) follows the last stage; global pooling → dropout → Dense logits → softmax/sigmoid.
    The model carries its `small_cnn_spec(attention, blocks)` (`tfxmed.models.spec`).
    """
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = inputs
    for stage, count in enumerate(blocks):
        if stage > 0:
            x = layers.MaxPooling2D(2, name=f"pool{stage}")(x)
        for block in range(count):
            last = stage == len(blocks) - 1 and block == count - 1
            conv_name = "last_conv" if last else f"conv{stage + 1}_{block + 1}"
            x = layers.Conv2D(width * 2**stage, kernel_size, padding="same", name=conv_name)(x)
            x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{conv_name}_bn")(x)
            x = layers.Activation("relu", name=f"{conv_name}_relu")(x)
    if attention:
        x = channel_spatial_attention(x, name="csam", reduction=4)
    outputs = classification_head(x, num_classes, multi_label, dropout, pooling, lse_r)
    return declare_spec(keras.Model(inputs, outputs, name=name), small_cnn_spec(attention, blocks))
