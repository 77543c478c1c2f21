"""LIME (Ribeiro et al., KDD 2016, arXiv:1602.04938) over superpixels.

Random on/off coalitions of superpixels (the first keeps all), each weighted by an exponential kernel
of its cosine distance to the original, explained by a weighted ridge surrogate (scikit-learn).
"""

from __future__ import annotations

import keras
import numpy as np
from sklearn.linear_model import Ridge

from tfxmed.explain.superpixels import SuperpixelExplainer

__all__ = ["Lime"]


class Lime(SuperpixelExplainer):
    """LIME image explainer; the map holds each superpixel's surrogate coefficient.

    Args:
        kernel_width: width of the exp(−d²/width²) proximity kernel (0.25 as in the lime package).
        alpha: ridge regularisation.
    """

    def __init__(
        self, model: keras.Model, samples: int = 256, kernel_width: float = 0.25, alpha: float = 1.0, **kwargs
    ):
        self.kernel_width, self.alpha = kernel_width, alpha
        super().__init__(model, samples=samples, **kwargs)

    def coalitions(self, features, rng):
        coalitions = rng.integers(0, 2, (self.samples, features)).astype(np.float32)
        coalitions[0] = 1.0
        on = coalitions.sum(1)
        cosine_distance = 1.0 - on / np.sqrt(np.maximum(on, 1e-12) * features)
        return coalitions, np.exp(-(cosine_distance**2) / self.kernel_width**2)

    def fit(self, coalitions, scores, sample_weights):
        surrogate = Ridge(alpha=self.alpha, random_state=self.seed)
        surrogate.fit(coalitions, scores, sample_weight=sample_weights)
        return surrogate.coef_
