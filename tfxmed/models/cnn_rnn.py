"""A CNN-RNN hybrid for volumes (issue 15): a 2-D CNN per slice, a bidirectional GRU over the slices, then
attention pooling over slices.

    [N, D, H, W, C] → TimeDistributed(small 2-D CNN) → `slice_features` [N, D, h, w, F]
      → global average per slice → Bidirectional GRU → [N, D, 2U]
      → `slice_scores` (Dense tanh → Dense 1) → `slice_attention`: softmax over slices [N, D]
      → Σ_d a_d · h_d → the shared head

The per-slice attention weights say which slices the model pooled: an explanation in their own right
(`slice_attention` is the declared attention layer; `tfxmed.models.factory.attention_model` returns it).
Grad-CAM works on `slice_features`, a volume of per-slice feature maps, upsampled to the input.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import layers, ops

from tfxmed.models.layers import classification_head
from tfxmed.models.spec import ModelSpec, declare_spec

__all__ = ["cnn_rnn", "cnn_rnn_spec", "AttentionPooling"]


def cnn_rnn_spec() -> ModelSpec:
    return ModelSpec(explain_layer="slice_features", attention_layer="slice_attention")


@keras.saving.register_keras_serializable(package="tfxmed")
class AttentionPooling(layers.Layer):
    """[sequence [N, D, F], weights [N, D]] → Σ_d w_d · x_d [N, F]."""

    def call(self, inputs):
        sequence, weights = inputs
        return ops.sum(sequence * ops.expand_dims(ops.cast(weights, sequence.dtype), -1), axis=1)

    def compute_output_shape(self, input_shapes):
        return (input_shapes[0][0], input_shapes[0][2])


def _slice_cnn(shape: Sequence[int], width: int, stages: int) -> keras.Model:
    image = keras.Input(tuple(shape), name="slice")
    x = image
    for stage in range(stages):
        filters = width * 2 ** stage
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"slice_conv{stage + 1}")(x)
        x = layers.ReLU(name=f"slice_relu{stage + 1}")(layers.BatchNormalization(name=f"slice_bn{stage + 1}")(x))
        if stage < stages - 1:
            x = layers.MaxPooling2D(name=f"slice_pool{stage + 1}")(x)
    return keras.Model(image, x, name="slice_cnn")


def cnn_rnn(
    input_shape: Sequence[int],
    num_classes: int,
    multi_label: bool = False,
    dropout: float = 0.3,
    width: int = 16,
    stages: int = 3,
    units: int = 32,
    weights: str = "none",
) -> keras.Model:
    """Builds the CNN-RNN for [D, H, W, C] volumes (`stages` conv stages per slice, `units` GRU units each way)."""
    if len(input_shape) != 4:
        raise ValueError(f"cnn_rnn takes volumes [D, H, W, C], got input shape {tuple(input_shape)}")
    volume = keras.Input(tuple(input_shape), name="image")
    features = layers.TimeDistributed(_slice_cnn(input_shape[1:], width, stages), name="slice_features")(volume)
    pooled = layers.TimeDistributed(layers.GlobalAveragePooling2D(), name="slice_pooled")(features)
    sequence = layers.Bidirectional(layers.GRU(units, return_sequences=True), name="slice_gru")(pooled)
    scores = layers.Dense(units, activation="tanh", name="slice_hidden")(sequence)
    scores = layers.Reshape((input_shape[0],), name="slice_scores")(layers.Dense(1, name="slice_score")(scores))
    attention = layers.Softmax(name="slice_attention")(scores)
    pooled_volume = AttentionPooling(name="slice_pooling")([sequence, attention])
    model = keras.Model(volume, classification_head(pooled_volume, num_classes, multi_label, dropout), name="cnn_rnn")
    if weights not in ("none", "", None):
        if weights == "imagenet":
            raise ValueError("model.weights: 'imagenet' has no weights for cnn_rnn; use none or a weights file")
        model.load_weights(weights)
    return declare_spec(model, cnn_rnn_spec())
