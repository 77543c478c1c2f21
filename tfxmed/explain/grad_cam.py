"""The CAM family's shared pipeline and Grad-CAM (Selvaraju et al., ICCV 2017, arXiv:1610.02391).

L^c = ReLU(Σ_k α_k^c A^k), α_k^c = mean over positions of ∂y^c/∂A^k, upsampled to the input size.
Subclasses change only `channel_weights`.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tfxmed.explain.base import Explainer, normalize_maps, upsample
from tfxmed.models.factory import default_explain_layer, find_layer

__all__ = ["CamExplainer", "GradCam"]


class CamExplainer(Explainer):
    """Class-activation-map explainers on the feature map of `layer`.

    Args:
        model: the classifier.
        layer: name of the feature layer (default: `default_explain_layer(model)`).
        batch_size: bound on internal batches.
        upsample_to_input: return maps at input resolution (else at feature resolution).
        normalize: scale each map to [0, 1].
    """

    def __init__(
        self,
        model: keras.Model,
        layer: str | None = None,
        batch_size: int = 32,
        upsample_to_input: bool = True,
        normalize: bool = True,
    ):
        self.layer = layer or default_explain_layer(model)
        self.upsample_to_input = upsample_to_input
        self.normalize = normalize
        super().__init__(model, batch_size)
        feature = find_layer(model, self.layer).output
        self.feature_model = keras.Model(model.input, [feature, self.scores.output], name=f"{model.name}_cam")

    def channel_weights(self, activations: tf.Tensor, gradients: tf.Tensor) -> tf.Tensor:
        """Weights broadcastable to the activations [n, *spatial, C]."""
        raise NotImplementedError

    def explain_batch(self, images: tf.Tensor, target_weights: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            activations, scores = self.feature_model(images, training=False)
            score = tf.reduce_sum(scores * target_weights, axis=-1)
        gradients = tape.gradient(score, activations)
        maps = tf.nn.relu(tf.reduce_sum(self.channel_weights(activations, gradients) * activations, axis=-1))
        if self.upsample_to_input:
            maps = upsample(maps, self.input_shape[:-1])
        return normalize_maps(maps) if self.normalize else maps


class GradCam(CamExplainer):
    """Grad-CAM: channel weights are the spatially averaged gradients of the target score."""

    def channel_weights(self, activations, gradients):
        spatial_axes = list(range(1, len(gradients.shape) - 1))
        return tf.reduce_mean(gradients, axis=spatial_axes, keepdims=True)
