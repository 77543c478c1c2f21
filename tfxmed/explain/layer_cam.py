"""LayerCAM (Jiang et al., IEEE TIP 2021): per-position weights ReLU(g_ij^k); map = ReLU(Σ_k ReLU(g)·A)."""

from __future__ import annotations

import tensorflow as tf

from tfxmed.explain.cam import CamExplainer

__all__ = ["LayerCam"]


class LayerCam(CamExplainer):
    """LayerCAM: every position keeps its own positive gradient as weight (finer maps at shallow layers)."""

    def channel_weights(self, activations, gradients):
        return tf.nn.relu(gradients)
