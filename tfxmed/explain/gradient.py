"""The gradient family's shared base: input gradients of the target score (saliency, SmoothGrad, IG)."""

from __future__ import annotations

import tensorflow as tf

from tfxmed.explain.base import Explainer

__all__ = ["GradientExplainer"]


class GradientExplainer(Explainer):
    """Base for methods built on input gradients of the target score."""

    def input_gradients(self, images: tf.Tensor, target_weights: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            tape.watch(images)
            score = tf.reduce_sum(self.scores(images, training=False) * target_weights, axis=-1)
        return tape.gradient(score, images)
