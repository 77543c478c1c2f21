"""HiResCAM (Draelos & Carin, 2020, arXiv:2011.08891): map = ReLU(Σ_k g^k ⊙ A^k), element-wise.

Unlike Grad-CAM it does not average the gradients, so for a CNN ending in GAP + Dense the map sums
exactly to the class score's contribution of each position (it is faithful to the model's computation).
"""

from __future__ import annotations

from tfxmed.explain.cam import CamExplainer

__all__ = ["HiResCam"]


class HiResCam(CamExplainer):
    """HiResCAM: the raw gradient at each position is that position's weight."""

    def channel_weights(self, activations, gradients):
        return gradients
