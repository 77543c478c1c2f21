"""Grad-CAM (Selvaraju et al., ICCV 2017, arXiv:1610.02391).

L^c = ReLU(Σ_k α_k^c A^k), α_k^c = mean over positions of ∂y^c/∂A^k, upsampled to the input size.
The pipeline is `tfxmed.explain.cam.CamExplainer`'s; Grad-CAM only chooses the channel weights.
"""

from __future__ import annotations

import tensorflow as tf

from tfxmed.explain.cam import CamExplainer
from tfxmed.explain.ops import spatial_axes

__all__ = ["GradCam"]


class GradCam(CamExplainer):
    """Grad-CAM: channel weights are the spatially averaged gradients of the target score."""

    def channel_weights(self, activations, gradients):
        return tf.reduce_mean(gradients, axis=spatial_axes(gradients), keepdims=True)
