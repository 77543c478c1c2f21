"""Gradient saliency (Simonyan et al., 2014, arXiv:1312.6034): |∂y^c/∂x|, max over channels.

`GradientExplainer` is the shared base of the gradient family (saliency, SmoothGrad, IG).
"""

from __future__ import annotations

import tensorflow as tf

from tfxmed.explain.base import Explainer

__all__ = ["GradientExplainer", "Saliency"]


class GradientExplainer(Explainer):
    """Base for methods built on input gradients of the target score."""

    def input_gradients(self, images: tf.Tensor, target_weights: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            tape.watch(images)
            score = tf.reduce_sum(self.scores(images, training=False) * target_weights, axis=-1)
        return tape.gradient(score, images)


class Saliency(GradientExplainer):
    """Vanilla gradient saliency: the largest absolute input gradient over channels at each pixel."""

    def explain_batch(self, images, target_weights):
        return tf.reduce_max(tf.abs(self.input_gradients(images, target_weights)), axis=-1)
