"""KernelSHAP (Lundberg & Lee, NeurIPS 2017, arXiv:1705.07874) over superpixels.

Written here rather than taken from the `shap` package: shap's KernelExplainer is model-agnostic and
would work, but it pulls numba/llvmlite into the install and calls the model one coalition set at a
time; this version batches the model calls like every other explainer. Coalition sizes are drawn with
the Shapley kernel (M−1)/(s(M−s)) and the weighted least squares is solved with the efficiency
constraint Σφ = y(x) − y(all superpixels filled) imposed exactly (eliminating the last feature), as
in shap's implementation.
"""

from __future__ import annotations

import numpy as np

from tfxmed.explain.superpixels import SuperpixelExplainer

__all__ = ["KernelShap"]


class KernelShap(SuperpixelExplainer):
    """Shapley values of superpixels (the map holds each superpixel's φ_i)."""

    def coalitions(self, features, rng):
        sizes = np.arange(1, features)
        kernel = (features - 1) / (sizes * (features - sizes))
        drawn = rng.choice(sizes, size=self.samples, p=kernel / kernel.sum())
        coalitions = np.zeros((self.samples + 2, features), np.float32)
        for row, size in enumerate(drawn):
            coalitions[row, rng.choice(features, size=size, replace=False)] = 1.0
        coalitions[-2] = 1.0  # all kept: y(x)
        # last row all zero: every superpixel filled, the baseline value
        # Sizes are already sampled ∝ the kernel, so the regression weights are uniform.
        return coalitions, np.ones(len(coalitions))

    def fit(self, coalitions, scores, sample_weights):
        full, empty = scores[-2], scores[-1]
        z, y = coalitions[:-2], scores[:-2] - empty
        # Efficiency: φ_M = (full − empty) − Σ_{i<M} φ_i, substituted into y ≈ z·φ.
        design = z[:, :-1] - z[:, -1:]
        target = y - z[:, -1] * (full - empty)
        weights = np.sqrt(sample_weights[:-2])[:, None]
        solution, *_ = np.linalg.lstsq(design * weights, target * weights[:, 0], rcond=None)
        return np.append(solution, (full - empty) - solution.sum())
