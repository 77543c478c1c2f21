"""Gradient saliency (Simonyan et al., 2014, arXiv:1312.6034): |∂y^c/∂x|, max over channels."""

from __future__ import annotations

import tensorflow as tf

from tfxmed.explain.gradient import GradientExplainer

__all__ = ["Saliency"]


class Saliency(GradientExplainer):
    """Vanilla gradient saliency: the largest absolute input gradient over channels at each pixel."""

    def explain_batch(self, images, target_weights):
        return tf.reduce_max(tf.abs(self.input_gradients(images, target_weights)), axis=-1)
