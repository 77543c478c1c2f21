"""Channel-spatial attention (CSAM), after CBAM (Woo et al., ECCV 2018, arXiv:1807.06521).

F' = M_s(F_c) ⊗ F_c with F_c = M_c(F) ⊗ F, where
M_c(F) = σ(MLP(AvgPool(F)) + MLP(MaxPool(F)))            (channel branch, shared MLP, ratio r)
M_s(F) = σ(conv_k×k([AvgPool_c(F); MaxPool_c(F)]))      (spatial branch)

The two branches are separate layers so the spatial map is a named tensor of the model, retrievable
for visualisation (`tfxmed.models.factory.attention_model`).
"""

from __future__ import annotations

import keras
from keras import layers, ops

__all__ = ["ChannelAttention", "SpatialAttention", "channel_spatial_attention"]


@keras.saving.register_keras_serializable(package="tfxmed")
class ChannelAttention(layers.Layer):
    """Channel branch of CBAM: rescales each channel by σ(MLP(avg) + MLP(max)).

    Args:
        reduction: hidden size of the shared MLP is channels // reduction.
    """

    def __init__(self, reduction: int = 16, **kwargs):
        super().__init__(**kwargs)
        if reduction < 1:
            raise ValueError(f"ChannelAttention reduction must be >= 1, got {reduction}")
        self.reduction = reduction

    def build(self, input_shape):
        channels = input_shape[-1]
        hidden = max(channels // self.reduction, 1)
        # Sublayers compute in this layer's dtype policy, not the global one in force when it is built (a
        # mixed_bfloat16 checkpoint loaded under float32 would otherwise multiply bfloat16 by float32).
        self.hidden_dense = layers.Dense(hidden, activation="relu", name="mlp_hidden", dtype=self.dtype_policy)
        self.output_dense = layers.Dense(channels, name="mlp_output", dtype=self.dtype_policy)
        self.hidden_dense.build((None, channels))
        self.output_dense.build((None, hidden))

    def call(self, inputs):
        spatial_axes = tuple(range(1, len(inputs.shape) - 1))
        average = ops.mean(inputs, axis=spatial_axes)
        maximum = ops.max(inputs, axis=spatial_axes)
        scores = self.output_dense(self.hidden_dense(average)) + self.output_dense(self.hidden_dense(maximum))
        weights = ops.sigmoid(scores)
        for _ in spatial_axes:
            weights = ops.expand_dims(weights, axis=1)
        return inputs * weights

    def get_config(self):
        return {**super().get_config(), "reduction": self.reduction}


@keras.saving.register_keras_serializable(package="tfxmed")
class SpatialAttention(layers.Layer):
    """Spatial branch of CBAM: returns the attention map σ(conv([mean_c; max_c])) of shape [..., 1].

    Args:
        kernel_size: size of the convolution over the pooled descriptors (7 in the paper).
    """

    def __init__(self, kernel_size: int = 7, **kwargs):
        super().__init__(**kwargs)
        self.kernel_size = kernel_size

    def build(self, input_shape):
        convolution = layers.Conv3D if len(input_shape) == 5 else layers.Conv2D  # volumes [N, D, H, W, C]
        self.conv = convolution(1, self.kernel_size, padding="same", name="conv", dtype=self.dtype_policy)
        self.conv.build(tuple(input_shape[:-1]) + (2,))

    def call(self, inputs):
        descriptors = ops.concatenate(
            [ops.mean(inputs, axis=-1, keepdims=True), ops.max(inputs, axis=-1, keepdims=True)], axis=-1
        )
        return ops.sigmoid(self.conv(descriptors))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (1,)

    def get_config(self):
        return {**super().get_config(), "kernel_size": self.kernel_size}


def channel_spatial_attention(features, name: str = "csam", reduction: int = 16, kernel_size: int = 7):
    """Applies CSAM to a functional tensor; the spatial map is the layer `<name>_spatial`."""
    refined = ChannelAttention(reduction, name=f"{name}_channel")(features)
    spatial_map = SpatialAttention(kernel_size, name=f"{name}_spatial")(refined)
    return layers.Multiply(name=name)([refined, spatial_map])
