"""XGrad-CAM (Fu et al., BMVC 2020, arXiv:2008.02312): w_k = Σ_ij (A_ij^k / Σ_ab A_ab^k) · g_ij^k."""

from __future__ import annotations

import tensorflow as tf

from tfxmed.explain.cam import CamExplainer
from tfxmed.explain.ops import spatial_axes

__all__ = ["XGradCam"]


class XGradCam(CamExplainer):
    """XGrad-CAM: gradients averaged with the normalised activations as weights (axiom-based)."""

    def channel_weights(self, activations, gradients):
        axes = spatial_axes(gradients)
        total = tf.reduce_sum(activations, axis=axes, keepdims=True)
        return tf.reduce_sum(tf.math.divide_no_nan(activations, total) * gradients, axis=axes, keepdims=True)
