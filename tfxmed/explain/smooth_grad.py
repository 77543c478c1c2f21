"""SmoothGrad (Smilkov et al., 2017, arXiv:1706.03825): saliency averaged over noisy copies.

σ = noise_level · (max(x) − min(x)) per image; internal batches hold at most `batch_size` noisy copies.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tfxmed.explain.gradient import GradientExplainer

__all__ = ["SmoothGrad"]


class SmoothGrad(GradientExplainer):
    """Mean of |∂y^c/∂x| over `samples` copies of x + N(0, σ²), max over channels.

    Args:
        samples: noisy copies per image.
        noise_level: σ as a fraction of each image's value range (0.1–0.2 in the paper).
        seed: seed of the noise (stateless, so the same inputs give the same maps).
        precision: compute dtype of the model's passes (see `Explainer`).
    """

    def __init__(self, model: keras.Model, samples: int = 16, noise_level: float = 0.15, batch_size: int = 32,
                 seed: int = 42, precision: str = "float32"):
        if samples < 1:
            raise ValueError(f"samples must be >= 1, got {samples}")
        self.samples, self.noise_level, self.seed = samples, noise_level, seed
        super().__init__(model, batch_size, precision)

    def explain_batch(self, images, target_weights):
        axes = list(range(1, len(images.shape)))
        value_range = tf.reduce_max(images, axis=axes, keepdims=True) - tf.reduce_min(images, axis=axes, keepdims=True)
        sigma = self.noise_level * value_range
        total = tf.zeros_like(images)
        # One noisy copy of the (already ≤ batch_size) image batch per iteration bounds memory.
        for sample in tf.range(self.samples):
            noise = tf.random.stateless_normal(tf.shape(images), seed=tf.stack([self.seed, sample]))
            total += tf.abs(self.input_gradients(images + sigma * noise, target_weights))
        return tf.reduce_max(total / self.samples, axis=-1)
