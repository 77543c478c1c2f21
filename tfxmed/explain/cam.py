"""The CAM family's shared pipeline: feature maps and their gradients → channel weights → map.

L^c = ReLU(Σ_k w_k^c A^k) on the feature map A of one layer, upsampled to the input size and scaled to
[0, 1]. Each variant (Grad-CAM, Grad-CAM++, XGrad-CAM, LayerCAM, HiResCAM, Eigen(Grad)CAM, Score-CAM)
overrides `channel_weights` or `combine` only.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tfxmed.explain.base import Explainer
from tfxmed.explain.ops import normalize_maps, upsample
from tfxmed.explain.rewiring import rewire
from tfxmed.models.factory import find_layer, layer_output, model_input
from tfxmed.models.spec import default_explain_layer

__all__ = ["CamExplainer", "feature_and_output_model"]


def feature_and_output_model(model: keras.Model, layer_name: str) -> keras.Model:
    """A model returning [output of `layer_name`, model output], sharing `model`'s weights.

    The layer may sit inside nested sub-models (e.g. a ResNet50 backbone used as one layer of a
    transfer-learning classifier): the sub-model holding it is replaced, in a re-wiring of the outer
    graph, by a view that also returns the inner feature map.
    """
    if layer_name in [layer.name for layer in model.layers]:
        return keras.Model(model_input(model), [layer_output(model, layer_name), model.output])
    holder = None
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            try:
                find_layer(layer, layer_name)
            except ValueError:
                continue
            holder = layer
            break
    if holder is None:
        raise ValueError(f"no layer named '{layer_name}' in model '{model.name}' or its sub-models")
    inner = feature_and_output_model(holder, layer_name)
    captured = {}

    def call(layer, *args, **kwargs):
        if layer is holder:
            captured["feature"], output = inner(*args, **kwargs)
            return output
        return layer(*args, **kwargs)

    rewired = rewire(model, call)
    return keras.Model(model_input(rewired), [captured["feature"], rewired.output])


class CamExplainer(Explainer):
    """Class-activation-map explainers on the feature map of `layer`.

    Args:
        model: the classifier.
        layer: name of the feature layer (default: the model's declared `ModelSpec.explain_layer`, else the
            last 4-D layer; see `tfxmed.models.spec.default_explain_layer`).
        batch_size: bound on internal batches.
        upsample_to_input: return maps at input resolution (else at feature resolution).
        normalize: scale each map to [0, 1].
        precision: compute dtype of the model's passes ("float32", "bfloat16", "float16").
    """

    def __init__(
        self,
        model: keras.Model,
        layer: str | None = None,
        batch_size: int = 32,
        upsample_to_input: bool = True,
        normalize: bool = True,
        precision: str = "float32",
    ):
        self.layer = layer or default_explain_layer(model)
        self.upsample_to_input = upsample_to_input
        self.normalize = normalize
        super().__init__(model, batch_size, precision)
        self.feature_model = feature_and_output_model(self.scores, self.layer)

    def kept_layers(self) -> tuple[str, ...]:
        return (self.layer,)

    def channel_weights(self, activations: tf.Tensor, gradients: tf.Tensor) -> tf.Tensor:
        """Weights broadcastable to the activations [n, *spatial, C] (the hook most variants override)."""
        raise NotImplementedError

    def combine(self, activations: tf.Tensor, gradients: tf.Tensor) -> tf.Tensor:
        """The map at feature resolution [n, *spatial]: ReLU(Σ_k w_k · A^k) unless overridden."""
        return tf.nn.relu(tf.reduce_sum(self.channel_weights(activations, gradients) * activations, axis=-1))

    predicts_in_graph = True

    def feature_maps(self, images: tf.Tensor, target_weights: tf.Tensor | None) -> tuple[tf.Tensor, tf.Tensor]:
        """(activations, gradients of the target score w.r.t. them); None targets the predicted class."""
        with tf.GradientTape() as tape:
            activations, scores = self.feature_model(images, training=False)
            if target_weights is None:
                target_weights = tf.one_hot(tf.argmax(scores, axis=-1), self.num_classes, dtype=scores.dtype)
            score = tf.reduce_sum(scores * target_weights, axis=-1)
        gradients = tape.gradient(score, activations)
        return tf.cast(activations, tf.float32), tf.cast(gradients, tf.float32)  # mixed-precision models

    def finish(self, maps: tf.Tensor) -> tf.Tensor:
        """Upsamples to the input size and normalises, as configured."""
        if self.upsample_to_input:
            maps = upsample(maps, self.input_shape[:-1])
        return normalize_maps(maps) if self.normalize else maps

    def explain_batch(self, images: tf.Tensor, target_weights: tf.Tensor) -> tf.Tensor:
        return self.finish(self.combine(*self.feature_maps(images, target_weights)))
