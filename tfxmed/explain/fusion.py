"""Fusion of explanations: H = Σ_i λ_i · normalise(smooth(max(map_i, 0))) / Σ λ_i ("mean"), or the
weighted geometric mean Π_i normalise(...)^(λ_i / Σ λ) ("product": evidence that every method agrees
on, e.g. a coarse Grad-CAM region sharpened by Integrated Gradients, as Guided Grad-CAM does).

Default weights, from the design the project started from: 0.4 Grad-CAM + 0.4 Integrated Gradients + 0.2 LIME.
Per-map steps, in order: signed maps keep their positive part (evidence *for* the target);
pixel-level maps (everything but the CAM family, already smooth after upsampling) get a Gaussian blur
of `smoothing_sigma` pixels; each map is then scaled per image by "minmax" (to [0, 1]) or "rank"
(each pixel's percentile within its map, robust to a few extreme pixels).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import tensorflow as tf

from tfxmed.explain.base import Explainer, host_side_message
from tfxmed.explain.cam import CamExplainer
from tfxmed.explain.ops import gaussian_blur, minmax_maps
from tfxmed.metrics.maps import minmax_per_map, rank_per_map

__all__ = ["Fusion", "DEFAULT_WEIGHTS", "NORMALIZATIONS"]

DEFAULT_WEIGHTS = {"gradcam": 0.4, "ig": 0.4, "lime": 0.2}
# Per-map scaling to [0, 1] by name (`tfxmed.metrics.maps`).
NORMALIZATIONS = {"minmax": minmax_per_map, "rank": rank_per_map}
COMBINATIONS = ("mean", "product")


def _pixel_level(explainer) -> bool:
    """True for maps that get smoothed: not the CAM family (nor a fusion of CAMs, e.g. an ensemble's)."""
    if isinstance(explainer, Fusion):
        return any(_pixel_level(inner) for inner in explainer.explainers.values())
    return not isinstance(explainer, CamExplainer)


class Fusion:
    """Weighted fusion of several explainers' maps (build one with `make_explainer("fusion", model)`).

    Args:
        explainers: method name → a built explainer (e.g. from `make_explainer`).
        weights: method name → λ, for the same names (default `DEFAULT_WEIGHTS`).
        normalization: "minmax" or "rank".
        smoothing_sigma: Gaussian σ in pixels for pixel-level maps (0 disables).
        combination: "mean" (weighted arithmetic mean) or "product" (weighted geometric mean).
    """

    def __init__(
        self,
        explainers: Mapping[str, Callable],
        weights: Mapping[str, float] | None = None,
        normalization: str = "minmax",
        smoothing_sigma: float = 1.0,
        combination: str = "mean",
    ):
        self.weights = dict(weights or DEFAULT_WEIGHTS)
        if not self.weights or any(w < 0 for w in self.weights.values()) or sum(self.weights.values()) <= 0:
            raise ValueError(f"fusion weights must be non-negative with a positive sum, got {self.weights}")
        if set(self.weights) != set(explainers):
            raise ValueError(f"fusion weights name {sorted(self.weights)} but the explainers are {sorted(explainers)}")
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {', '.join(NORMALIZATIONS)}; got '{normalization}'")
        if combination not in COMBINATIONS:
            raise ValueError(f"combination must be one of {', '.join(COMBINATIONS)}; got '{combination}'")
        self.normalization, self.smoothing_sigma, self.combination = normalization, smoothing_sigma, combination
        self.explainers = dict(explainers)

    def process(self, raw: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Each method's map from its raw map: positive part, smoothed (pixel-level maps), normalised."""
        processed = {}
        for name, explainer in self.explainers.items():
            maps = np.maximum(np.asarray(raw[name], np.float32), 0.0)
            if self.smoothing_sigma > 0 and _pixel_level(explainer) and maps.ndim == 3:
                maps = gaussian_blur(tf.constant(maps[..., None]), self.smoothing_sigma).numpy()[..., 0]
            processed[name] = NORMALIZATIONS[self.normalization](maps)
        return processed

    def combine(self, processed: Mapping[str, np.ndarray]) -> np.ndarray:
        """The weighted mean or geometric mean of processed maps."""
        total = sum(self.weights.values())
        if self.combination == "product":
            fused = 1.0
            for name, maps in processed.items():
                fused = fused * np.power(maps, self.weights[name] / total)
            return np.asarray(fused, np.float32)
        return sum(self.weights[name] * maps for name, maps in processed.items()) / total

    def fuse(self, raw: Mapping[str, np.ndarray]) -> np.ndarray:
        """The fusion of already computed raw maps (method name → maps), e.g. maps cached for several fusions."""
        return self.combine(self.process(raw))

    def component_maps(self, images, targets=None) -> dict[str, np.ndarray]:
        """Each method's processed map (positive part, smoothed, normalised)."""
        images = np.asarray(images, np.float32)
        return self.process({name: explainer(images, targets) for name, explainer in self.explainers.items()})

    @property
    def in_graph(self) -> bool:
        """True when every component computes in-graph and maps are min-max scaled: then the fusion
        itself runs as one TensorFlow function (`explain_batch`), e.g. in the SavedModel `explain`."""
        return self.normalization == "minmax" and all(
            isinstance(e, Explainer | Fusion) and e.in_graph for e in self.explainers.values())

    @property
    def scores(self):
        """The pre-activation scores model (the components explain the same model)."""
        return next(iter(self.explainers.values())).scores

    jit_compile = False

    def with_jit_compile(self, enabled: bool = True) -> Fusion:
        """Compiles the fusion and each component with XLA (see `Explainer.with_jit_compile`); returns self.

        Refused, naming them, when a component computes on the host (the design's fusion includes LIME).
        """
        if enabled and not self.in_graph:
            host = [name for name, e in self.explainers.items() if not getattr(e, "in_graph", False)]
            raise ValueError(host_side_message(host[0]) if host else
                             "a fusion with normalization='rank' computes on the host and cannot be compiled with XLA; "
                             "use normalization='minmax'")
        for explainer in self.explainers.values():
            explainer.with_jit_compile(enabled)
        self.jit_compile = bool(enabled)
        self.__dict__.pop("_compiled_batch", None)
        return self

    @property
    def compiled_batch(self):
        """`explain_batch` as one compiled function (built on first use; XLA after `with_jit_compile()`)."""
        if not hasattr(self, "_compiled_batch"):
            self._compiled_batch = tf.function(self.explain_batch, jit_compile=self.jit_compile or None)
        return self._compiled_batch

    def explain_batch(self, images: tf.Tensor, target_weights: tf.Tensor) -> tf.Tensor:
        """The same fusion in TensorFlow, for in-graph components (see `in_graph`)."""
        if not self.in_graph:
            host = [name for name, e in self.explainers.items() if not getattr(e, "in_graph", False)]
            raise ValueError(f"this fusion cannot run in a graph: {host or 'rank normalisation'} computes on the "
                             "host; serve a fusion of in-graph methods, e.g. weights={'gradcam': 0.4, 'ig': 0.4}")
        total = sum(self.weights.values())
        fused = 1.0 if self.combination == "product" else 0.0
        for name, explainer in self.explainers.items():
            maps = tf.nn.relu(explainer.explain_batch(images, target_weights))
            if self.smoothing_sigma > 0 and _pixel_level(explainer) and maps.shape.rank == 3:
                maps = gaussian_blur(maps[..., None], self.smoothing_sigma)[..., 0]
            share = self.weights[name] / total
            if self.combination == "product":
                fused = fused * tf.pow(minmax_maps(maps), share)
            else:
                fused = fused + share * minmax_maps(maps)
        return fused

    def __call__(self, images, targets=None) -> np.ndarray:
        return self.combine(self.component_maps(images, targets))
