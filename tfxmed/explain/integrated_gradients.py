"""Integrated Gradients (Sundararajan et al., ICML 2017, arXiv:1703.01365).

φ(x) = (x − x') ⊙ ∫₀¹ ∂y^c/∂x (x' + α(x − x')) dα, by a Riemann (left/right/middle) or trapezoid sum.
Completeness: Σφ ≈ y^c(x) − y^c(x'); `completeness_error` reports the relative gap (of the unsmoothed
`attributions`; `smoothing_sigma` only blurs the summed map, as a display and localisation choice). Every internal
batch of interpolated images holds at most `batch_size` images (images × alphas), so memory is bounded
whatever the number of steps.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from tfxmed.explain.gradient import GradientExplainer
from tfxmed.explain.ops import gaussian_blur

__all__ = ["IntegratedGradients", "RULES", "path_baselines", "path_weights"]

RULES = ("trapezoid", "left", "right", "middle")


def path_weights(steps: int, rule: str) -> tuple[np.ndarray, np.ndarray]:
    """(alphas, weights) of the quadrature along the straight path; weights sum to 1."""
    if rule not in RULES:
        raise ValueError(f"rule must be one of {', '.join(RULES)}; got '{rule}'")
    grid = np.linspace(0.0, 1.0, steps + 1)
    if rule == "trapezoid":
        weights = np.full(steps + 1, 1.0 / steps)
        weights[[0, -1]] /= 2.0
        return grid, weights
    alphas = {"left": grid[:-1], "right": grid[1:], "middle": (grid[:-1] + grid[1:]) / 2.0}[rule]
    return alphas, np.full(steps, 1.0 / steps)


def path_baselines(images: tf.Tensor, baseline="zero", blur_sigma: float = 5.0) -> tf.Tensor:
    """IG's starting images: zeros, `images` blurred at σ = `blur_sigma` pixels, or a given array."""
    if isinstance(baseline, str):
        if baseline == "zero":
            return tf.zeros_like(images)
        return gaussian_blur(images, blur_sigma)
    return tf.broadcast_to(tf.constant(baseline, tf.float32), tf.shape(images))


class IntegratedGradients(GradientExplainer):
    """IG attributions summed over channels (signed maps; `attributions` keeps the channels).

    Args:
        steps: quadrature intervals along the path.
        baseline: "zero", "blurred" (Gaussian blur, σ = blur_sigma pixels; Sturmfels et al., Distill
            2020: the path then adds only the image's fine structure, and IG attributes to it) or an
            array broadcastable to one image.
        rule: "trapezoid" (default), "left", "right" or "middle" Riemann sums.
        batch_size: bound on images × alphas in one model call.
        precision: compute dtype of the model's passes (see `Explainer`).
        smoothing_sigma: Gaussian σ in pixels applied to the channel-summed (signed) map; 0 disables.
            IG maps are pixel speckle; at the scale of the findings a blur turns them into regions.
    """

    def __init__(
        self,
        model: keras.Model,
        steps: int = 32,
        baseline="zero",
        rule: str = "trapezoid",
        batch_size: int = 32,
        blur_sigma: float = 5.0,
        precision: str = "float32",
        smoothing_sigma: float = 0.0,
    ):
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        if smoothing_sigma < 0 or blur_sigma <= 0:
            raise ValueError(f"need smoothing_sigma >= 0 and blur_sigma > 0, got {smoothing_sigma} and {blur_sigma}")
        self.steps, self.rule, self.blur_sigma, self.smoothing_sigma = steps, rule, blur_sigma, smoothing_sigma
        alphas, weights = path_weights(steps, rule)
        self.alphas, self.weights = tf.constant(alphas, tf.float32), tf.constant(weights, tf.float32)
        if isinstance(baseline, str) and baseline not in ("zero", "blurred"):
            raise ValueError(f"baseline must be 'zero', 'blurred' or an array; got '{baseline}'")
        self.baseline = baseline
        super().__init__(model, batch_size, precision)

    def build_functions(self) -> None:
        super().build_functions()
        self._compiled_attributions = self.compiled(self.integrated_gradients, self._signature)

    def baselines(self, images: tf.Tensor) -> tf.Tensor:
        return path_baselines(images, self.baseline, self.blur_sigma)

    def integrated_gradients(self, images: tf.Tensor, target_weights: tf.Tensor) -> tf.Tensor:
        """Attributions [n, *spatial, C] for one internal batch of images."""
        baselines = self.baselines(images)
        difference = images - baselines
        count = tf.shape(images)[0]
        per_chunk = tf.maximum(1, self.batch_size // count)
        total = tf.zeros_like(images)
        count_alphas = tf.shape(self.alphas)[0]
        for start in tf.range(0, count_alphas, per_chunk):
            alphas = self.alphas[start : start + per_chunk]
            weights = self.weights[start : start + per_chunk]
            chunk = tf.shape(alphas)[0]
            shape = [-1] + [1] * len(images.shape)
            path = baselines[None] + tf.reshape(alphas, shape) * difference[None]  # [k, n, ...]
            flat = tf.reshape(path, tf.concat([[chunk * count], tf.shape(images)[1:]], 0))
            targets = tf.tile(target_weights, [chunk, 1])
            gradients = tf.reshape(self.input_gradients(flat, targets), tf.shape(path))
            total += tf.reduce_sum(tf.reshape(weights, shape) * gradients, axis=0)
        return difference * total

    def explain_batch(self, images, target_weights):
        maps = tf.reduce_sum(self.integrated_gradients(images, target_weights), axis=-1)
        if self.smoothing_sigma > 0:
            if maps.shape.rank != 3:
                raise ValueError(f"smoothing_sigma blurs 2-D maps; these are {maps.shape.rank - 1}-D")
            maps = gaussian_blur(maps[..., None], self.smoothing_sigma)[..., 0]
        return maps

    def attributions(self, images, targets=None) -> np.ndarray:
        """Per-channel attributions [N, *spatial, C]."""
        images = np.asarray(images, np.float32)
        weights = self._weights_for(images, targets)
        return np.concatenate(
            [self._compiled_attributions(images[i : i + self.batch_size], weights[i : i + self.batch_size]).numpy()
             for i in range(0, len(images), self.batch_size)]
        )

    def completeness_error(self, images, targets=None) -> np.ndarray:
        """|Σφ − (y(x) − y(x'))| / |y(x) − y(x')| per image."""
        images = np.asarray(images, np.float32)
        weights = self._weights_for(images, targets)
        total = self.attributions(images, weights).reshape(len(images), -1).sum(-1)
        baselines = self.baselines(tf.constant(images)).numpy()
        gap = ((self.predict_scores(images) - self.predict_scores(baselines)) * weights).sum(-1)
        return np.abs(total - gap) / np.maximum(np.abs(gap), 1e-12)
