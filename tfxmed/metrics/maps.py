"""Per-map scaling on the host (NumPy): min-max and rank normalisation of maps or images, one per row.

`minmax_per_map` is the one NumPy min-max of the package (fusion, faithfulness, the sanity check,
overlays, superpixel segmentation, TensorBoard images); its in-graph twin is
`tfxmed.explain.ops.minmax_maps`.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

__all__ = ["minmax_per_map", "rank_per_map"]


def minmax_per_map(maps: np.ndarray, floor: float = 0.0) -> np.ndarray:
    """Scales each map of [N, ...] to [0, 1] by its own minimum and maximum (all non-batch axes), float32.

    A constant map becomes all zeros. `floor` > 0 bounds the divisor from below: a map whose range is
    under `floor` is divided by `floor` instead, so a nearly constant image stays nearly black rather
    than having its noise stretched to [0, 1] (what display code wants); with `floor` = 0 every
    non-constant map spans [0, 1] exactly, and a map with a NaN becomes all zeros.
    """
    maps = np.asarray(maps)
    flat = maps.reshape(len(maps), -1).astype(np.float64)
    low, high = flat.min(1, keepdims=True), flat.max(1, keepdims=True)
    span = high - low
    if floor > 0:
        scaled = (flat - low) / np.maximum(span, floor)
    else:
        scaled = np.where(span > 0, (flat - low) / np.where(span > 0, span, 1.0), 0.0)
    return scaled.reshape(maps.shape).astype(np.float32)


def rank_per_map(maps: np.ndarray) -> np.ndarray:
    """Each pixel's rank within its map of [N, ...], scaled to [0, 1] (ties share their mean rank), float32."""
    maps = np.asarray(maps)
    flat = maps.reshape(len(maps), -1).astype(np.float64)
    scaled = (rankdata(flat, axis=1) - 1.0) / np.maximum(flat.shape[1] - 1, 1)
    return scaled.reshape(maps.shape).astype(np.float32)
