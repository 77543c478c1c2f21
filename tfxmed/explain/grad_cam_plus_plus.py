"""Grad-CAM++ (Chattopadhyay et al., WACV 2018, arXiv:1710.11063).

α_ij^kc = g² / (2 g² + Σ_ab A_ab^k · g³),  w_k^c = Σ_ij α_ij^kc · ReLU(g_ij^k), with g = ∂y^c/∂A^k
(the closed form for an exponential output, as in the paper and pytorch-grad-cam).
"""

from __future__ import annotations

import tensorflow as tf

from tfxmed.explain.cam import CamExplainer
from tfxmed.explain.ops import spatial_axes

__all__ = ["GradCamPlusPlus"]


class GradCamPlusPlus(CamExplainer):
    """Grad-CAM++: positive gradients weighted per position by the second/third-order term α."""

    def channel_weights(self, activations, gradients):
        axes = spatial_axes(gradients)
        squared, cubed = gradients**2, gradients**3
        activation_sum = tf.reduce_sum(activations, axis=axes, keepdims=True)
        alpha = tf.math.divide_no_nan(squared, 2.0 * squared + activation_sum * cubed)
        alpha = tf.where(gradients != 0.0, alpha, tf.zeros_like(alpha))
        return tf.reduce_sum(alpha * tf.nn.relu(gradients), axis=axes, keepdims=True)
