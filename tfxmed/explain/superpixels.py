"""Shared machinery of the superpixel perturbation methods (LIME, KernelSHAP)."""

from __future__ import annotations

import keras
import numpy as np

from tfxmed.explain.base import Explainer
from tfxmed.metrics.maps import minmax_per_map

__all__ = ["SuperpixelExplainer", "segment"]

SEGMENTERS = ("slic", "quickshift")


def segment(image: np.ndarray, method: str = "slic", segments: int = 50, seed: int = 42) -> np.ndarray:
    """Superpixel labels [H, W] (0..S-1) of one image [H, W, C] with scikit-image."""
    from skimage.segmentation import quickshift, slic

    scaled = minmax_per_map(image[None], floor=1e-6)[0]
    if method == "slic":
        compactness = 0.1 if scaled.shape[-1] == 1 else 10.0
        labels = slic(scaled.astype(np.float64), n_segments=segments, compactness=compactness,
                      channel_axis=-1, start_label=0)
    elif method == "quickshift":
        rgb = np.repeat(scaled, 3, axis=-1) if scaled.shape[-1] == 1 else scaled
        labels = quickshift(rgb.astype(np.float64), kernel_size=3, max_dist=6, ratio=0.5, rng=seed)
    else:
        raise ValueError(f"segmentation must be one of {', '.join(SEGMENTERS)}; got '{method}'")
    _, labels = np.unique(labels, return_inverse=True)
    return labels.reshape(image.shape[:2])


class SuperpixelExplainer(Explainer):
    """Base: sample on/off superpixel coalitions, score them in batches, fit a surrogate per image.

    Subclasses implement `coalitions(count, rng)` and `fit(coalitions, scores)` → per-superpixel values.
    Runs on the host (scikit-image and scikit-learn); the model calls are batched (`batch_size`), in
    `precision` (see `Explainer`).
    """

    in_graph = False  # fits a surrogate per image on the host

    def __init__(self, model: keras.Model, samples: int = 256, segmentation: str = "slic", segments: int = 50,
                 fill: float = 0.0, batch_size: int = 64, seed: int = 42, precision: str = "float32"):
        self.samples, self.segmentation, self.segments = samples, segmentation, segments
        self.fill, self.seed = fill, seed
        super().__init__(model, batch_size, precision)

    def coalitions(self, features: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def fit(self, coalitions: np.ndarray, scores: np.ndarray, sample_weights: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def explain_one(self, image: np.ndarray, target: np.ndarray) -> np.ndarray:
        labels = segment(image, self.segmentation, self.segments, self.seed)
        features = int(labels.max()) + 1
        rng = np.random.default_rng(self.seed)
        coalitions, sample_weights = self.coalitions(features, rng)
        keep = coalitions[:, labels][..., None].astype(np.float32)  # [S, H, W, 1]
        perturbed = image[None] * keep + self.fill * (1.0 - keep)
        values = self.fit(coalitions, (self.predict_scores(perturbed) * target).sum(-1), sample_weights)
        return values[labels].astype(np.float32)

    def __call__(self, images, targets=None) -> np.ndarray:
        images = np.asarray(images, np.float32)
        weights = self._weights_for(images, targets)
        if not len(images):
            return np.zeros((0, *self.input_shape[:-1]), np.float32)
        return np.stack([self.explain_one(image, target) for image, target in zip(images, weights)])
