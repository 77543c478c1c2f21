"""Layer-wise Relevance Propagation (Bach et al., PLoS ONE 2015; rules as in Montavon et al., 2019).

Supported: models that are a single chain of layers (Sequential-style, including functional chains)
made of Conv1D/2D/3D, Dense, BatchNormalization, Max/Average/GlobalAverage pooling, Flatten, Dropout,
Activation/ReLU (relu or linear) and a final softmax/sigmoid (skipped: relevance starts at the target
logit). Anything else — residual connections (ResNet), attention, concatenations, other activations —
is refused with an error naming the layer, because these rules would not conserve relevance there.

Rules: "epsilon" — R_i = a_i Σ_j w_ij R_j / (z_j + ε·sign(z_j)); "alpha_beta" — R_i = a_i Σ_j
(α w⁺_ij / z⁺_j − β w⁻_ij / z⁻_j) R_j on layers whose input is non-negative (after a ReLU); the first
layer (whose input, a normalised image, may be negative) and BatchNormalization use the ε-rule.
Each rule is computed with the gradient trick (R_in = a ⊙ ∂(z · stop_gradient(R/z))/∂a), so the
propagation is batched and compiled like the other explainers.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tfxmed.explain.base import Explainer
from tfxmed.models.keras_internals import inbound_layers

__all__ = ["LayerwiseRelevancePropagation", "SUPPORTED_LAYERS", "RULES"]

RULES = ("epsilon", "alpha_beta")
LINEAR = (keras.layers.Dense, keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)
POOLING = (
    keras.layers.MaxPooling1D, keras.layers.MaxPooling2D, keras.layers.MaxPooling3D,
    keras.layers.AveragePooling1D, keras.layers.AveragePooling2D, keras.layers.AveragePooling3D,
    keras.layers.GlobalAveragePooling1D, keras.layers.GlobalAveragePooling2D, keras.layers.GlobalAveragePooling3D,
)
PASS_THROUGH = (keras.layers.Flatten, keras.layers.Dropout, keras.layers.ReLU, keras.layers.InputLayer)
SUPPORTED_LAYERS = LINEAR + POOLING + PASS_THROUGH + (keras.layers.BatchNormalization, keras.layers.Activation)
ALLOWED_ACTIVATIONS = ("relu", "linear")


def _activation_name(layer) -> str:
    activation = getattr(layer, "activation", None)
    return getattr(activation, "__name__", "linear") if activation is not None else "linear"


def _stabilise(z: tf.Tensor, epsilon: float) -> tf.Tensor:
    return z + epsilon * tf.where(z >= 0, 1.0, -1.0)


def _gradient_rule(function, inputs, relevance, epsilon):
    """R_in = a ⊙ ∂/∂a Σ z(a) · stop_gradient(R / stabilised z)."""
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        z = function(inputs)
        ratio = tf.stop_gradient(relevance / _stabilise(z, epsilon))
        total = tf.reduce_sum(z * ratio)
    return inputs * tape.gradient(total, inputs)


def _linear_map(layer, kernel, bias):
    """z(a) of a Dense/Conv layer with the given kernel and bias (no activation)."""
    if isinstance(layer, keras.layers.Dense):
        return lambda a: tf.tensordot(a, kernel, axes=1) + (0.0 if bias is None else bias)
    strides, dilations = list(layer.strides), list(layer.dilation_rate)
    padding = layer.padding.upper()
    return lambda a: tf.nn.convolution(a, kernel, strides=strides, padding=padding, dilations=dilations) + (
        0.0 if bias is None else bias
    )


class LayerwiseRelevancePropagation(Explainer):
    """LRP maps (input relevance summed over channels) for chain CNNs.

    Args:
        rule: "epsilon" or "alpha_beta".  epsilon: stabiliser.  alpha, beta: with α − β = 1.
    """

    fold_batch_norm = False  # the chain check and the rules walk the model's own layers

    def __init__(self, model: keras.Model, rule: str = "epsilon", epsilon: float = 1e-6, alpha: float = 1.0,
                 beta: float = 0.0, batch_size: int = 32):
        if rule not in RULES:
            raise ValueError(f"rule must be one of {', '.join(RULES)}; got '{rule}'")
        if rule == "alpha_beta" and abs(alpha - beta - 1.0) > 1e-9:
            raise ValueError(f"alpha_beta needs alpha - beta = 1, got alpha={alpha}, beta={beta}")
        self.rule, self.epsilon, self.alpha, self.beta = rule, epsilon, alpha, beta
        super().__init__(model, batch_size)
        self.chain = self._chain(self.scores)

    @staticmethod
    def _chain(model: keras.Model) -> list:
        layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
        previous = None
        for layer in layers:
            if not isinstance(layer, SUPPORTED_LAYERS):
                raise ValueError(
                    f"LRP does not support layer '{layer.name}' ({type(layer).__name__}); supported: chains of "
                    + ", ".join(sorted({t.__name__ for t in SUPPORTED_LAYERS}))
                )
            if _activation_name(layer) not in ALLOWED_ACTIVATIONS:
                raise ValueError(f"LRP supports relu/linear activations; layer '{layer.name}' uses "
                                 f"{_activation_name(layer)}")
            inbound = inbound_layers(layer)
            if len(inbound) > 1 or (previous is not None and inbound and inbound[0] is not previous):
                raise ValueError(f"LRP needs a single chain of layers; layer '{layer.name}' has other inputs "
                                 "(e.g. a residual)")
            previous = layer
        return layers

    def _propagate(self, layer, inputs, relevance, first: bool):
        if isinstance(layer, PASS_THROUGH) or isinstance(layer, keras.layers.Activation):
            return tf.reshape(relevance, tf.shape(inputs))  # Flatten: back to the input's shape
        if isinstance(layer, POOLING):
            return _gradient_rule(lambda a: layer(a, training=False), inputs, relevance, self.epsilon)
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma = layer.gamma if layer.scale else 1.0
            beta = layer.beta if layer.center else 0.0
            scale = gamma / tf.sqrt(layer.moving_variance + layer.epsilon)
            shift = beta - layer.moving_mean * scale
            return _gradient_rule(lambda a: a * scale + shift, inputs, relevance, self.epsilon)
        kernel = layer.kernel
        bias = layer.bias if layer.use_bias else None
        if self.rule == "epsilon" or first:
            return _gradient_rule(_linear_map(layer, kernel, bias), inputs, relevance, self.epsilon)
        positive = _linear_map(layer, tf.nn.relu(kernel), None if bias is None else tf.nn.relu(bias))
        negative = _linear_map(layer, -tf.nn.relu(-kernel), None if bias is None else -tf.nn.relu(-bias))
        return self.alpha * _gradient_rule(positive, inputs, relevance, self.epsilon) - self.beta * _gradient_rule(
            negative, inputs, relevance, self.epsilon
        )

    def explain_batch(self, images, target_weights):
        activations = [images]
        for layer in self.chain:
            activations.append(layer(activations[-1], training=False))
        relevance = activations[-1] * target_weights  # start at the target logit(s)
        for position in range(len(self.chain) - 1, -1, -1):
            relevance = self._propagate(self.chain[position], activations[position], relevance, position == 0)
        return tf.reduce_sum(relevance, axis=-1)
