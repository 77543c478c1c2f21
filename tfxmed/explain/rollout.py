"""Attention rollout (Abnar & Zuidema, 2020, arXiv:2005.00928) for models with Keras attention layers (ViT).

Each block's attention probabilities A_l [N, heads, T, T] are averaged over heads, the residual path is
added as identity, Â_l = (A_l + I) / 2 with rows renormalised, and the blocks are chained,
R = Â_L · … · Â_1. The class token's row of R over the patch tokens, reshaped to the patch grid,
upsampled to the input and min-max scaled to [0, 1] (every patch keeps some flow through the residual
path, so dividing by the maximum alone would leave a raised floor), is the map: how much each patch flows into the class
token through every layer. It does not depend on the target class (the method is class-agnostic).

The probabilities are read by re-wiring the model so every `keras.layers.MultiHeadAttention` call
also returns its scores (`tfxmed.explain.rewiring`); the model itself is unchanged.
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from tfxmed.explain.base import Explainer
from tfxmed.explain.ops import minmax_maps, upsample
from tfxmed.explain.rewiring import rewire

__all__ = ["AttentionRollout", "attention_probabilities_model"]


class _Probabilities(keras.layers.Layer):
    """The attention probabilities of a `MultiHeadAttention` call, as a layer of their own. (A functional
    graph cannot output the layer's second output itself: Keras 3 does not trace `return_attention_scores`
    through `compute_output_spec`.)"""

    def __init__(self, attention: keras.layers.Layer, **kwargs):
        super().__init__(name=f"{attention.name}_probabilities", **kwargs)
        self.attention = attention

    def call(self, *args, **kwargs):
        return self.attention(*args, **{**kwargs, "return_attention_scores": True})[1]


def attention_probabilities_model(model: keras.Model) -> keras.Model:
    """A model returning each attention layer's probabilities [N, heads, T, T], in call order."""
    captured = []

    def call(layer, *args, **kwargs):
        # An attention layer, or one wrapped to compute in another precision (`tfxmed.explain.precision`)
        if isinstance(layer, keras.layers.MultiHeadAttention) or isinstance(getattr(layer, "inner", None),
                                                                              keras.layers.MultiHeadAttention):
            captured.append(_Probabilities(layer)(*args, **kwargs))
        return layer(*args, **kwargs)

    rewired = rewire(model, call)
    if not captured:
        raise ValueError(f"model '{model.name}' has no keras.layers.MultiHeadAttention layer: attention rollout "
                         "explains attention models (model.name: vit)")
    return keras.Model(rewired.inputs[0], captured, name=f"{model.name}_attention_probabilities")


class AttentionRollout(Explainer):
    """Attention rollout maps [N, H, W] (class-agnostic: the targets are accepted and ignored).

    Args:
        model: a classifier with `MultiHeadAttention` layers over [class token, h·w patch tokens] (or over
            the patch tokens alone, when the token count is a square; the mean over query rows is used then).
        residual: the weight of the identity added for the residual path (the paper's 0.5).
    """

    fold_batch_norm = False
    predicts_in_graph = True

    def __init__(self, model: keras.Model, batch_size: int = 32, residual: float = 0.5, precision: str = "float32"):
        if not 0.0 <= residual < 1.0:
            raise ValueError(f"residual must be in [0, 1), got {residual}")
        self.residual = residual
        super().__init__(model, batch_size, precision)
        self.attention = attention_probabilities_model(self.scores)  # in the explainer's precision
        tokens = int(self.attention.outputs[0].shape[-1])
        side = math.isqrt(tokens - 1)
        if side * side == tokens - 1:
            self.class_token, self.grid = True, (side, side)
        elif math.isqrt(tokens) ** 2 == tokens:
            self.class_token, self.grid = False, (math.isqrt(tokens),) * 2
        else:
            raise ValueError(f"attention over {tokens} tokens is neither a square grid nor a class token plus one")

    def patch_flow(self, images: tf.Tensor) -> tf.Tensor:
        """The rollout at the patch grid [N, h, w], before upsampling and scaling."""
        probabilities = self.attention(images, training=False)
        probabilities = probabilities if isinstance(probabilities, list | tuple) else [probabilities]
        rollout = None
        for layer in probabilities:
            mixed = tf.reduce_mean(tf.cast(layer, tf.float32), axis=1)  # over heads
            mixed = (1.0 - self.residual) * mixed + self.residual * tf.eye(tf.shape(mixed)[-1])
            mixed = mixed / tf.reduce_sum(mixed, axis=-1, keepdims=True)
            rollout = mixed if rollout is None else tf.matmul(mixed, rollout)
        flow = rollout[:, 0, 1:] if self.class_token else tf.reduce_mean(rollout, axis=1)
        return tf.reshape(flow, (-1, *self.grid))

    def explain_batch(self, images: tf.Tensor, target_weights: tf.Tensor) -> tf.Tensor:
        return minmax_maps(upsample(self.patch_flow(images), self.input_shape[:-1]))
