"""Deletion and insertion (Petsiuk et al., 2018, RISE): does the map rank the pixels the model uses?

For each image, pixels are ranked by the map (most important first). *Deletion* replaces the top
k/steps of them with the baseline (zero) and tracks the target-class probability; *insertion* starts
from a blurred copy and puts the top pixels back. Each curve is integrated over the fraction of pixels
(trapezoid rule on [0, 1]): a faithful map has a low deletion AUC and a high insertion AUC.
All perturbed images of a batch of maps are scored together, in batches of `batch_size`.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from scipy import ndimage

__all__ = ["deletion_insertion", "perturbation_curves"]


def _ranks(maps: np.ndarray) -> np.ndarray:
    """Rank of every pixel within its map, 0 = most important (ties broken by position)."""
    flat = maps.reshape(len(maps), -1)
    order = np.argsort(-flat, axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(flat.shape[1])[None].repeat(len(flat), 0), axis=1)
    return ranks.reshape(maps.shape)


def perturbation_curves(
    predict: Callable[[np.ndarray], np.ndarray],
    images: np.ndarray,
    maps: np.ndarray,
    target_weights: np.ndarray,
    steps: int = 16,
    mode: str = "deletion",
    blur_sigma: float = 5.0,
    batch_size: int = 128,
) -> np.ndarray:
    """Target probability after revealing/removing the top k/steps pixels, k = 0..steps: [N, steps + 1].

    `predict` maps images [n, H, W, C] to probabilities [n, K]; `target_weights` [N, K] picks the
    class (rows of several ones average those classes' probabilities).
    """
    if mode not in ("deletion", "insertion"):
        raise ValueError(f"mode must be 'deletion' or 'insertion'; got '{mode}'")
    images = np.asarray(images, np.float32)
    maps = np.asarray(maps, np.float32)
    if maps.shape != images.shape[:-1]:
        raise ValueError(f"maps must have shape {images.shape[:-1]} (one per image, input resolution); got {maps.shape}")
    count, pixels = len(images), int(np.prod(images.shape[1:-1]))
    ranks = _ranks(maps)[..., None]  # [N, H, W, 1]
    if mode == "deletion":
        start, end = images, np.zeros_like(images)
    else:
        start = ndimage.gaussian_filter(images, sigma=(0, blur_sigma, blur_sigma, 0))
        end = images
    thresholds = np.round(np.linspace(0, pixels, steps + 1)).astype(int)
    perturbed = np.stack([np.where(ranks < t, end, start) for t in thresholds], axis=1)  # [N, S+1, H, W, C]
    flat = perturbed.reshape(-1, *images.shape[1:])
    probabilities = np.concatenate([predict(flat[i : i + batch_size]) for i in range(0, len(flat), batch_size)])
    weights = np.asarray(target_weights, np.float32)
    weights = weights / np.maximum(weights.sum(-1, keepdims=True), 1e-12)
    probabilities = probabilities.reshape(count, steps + 1, -1)
    return (probabilities * weights[:, None, :]).sum(-1)


def deletion_insertion(
    predict: Callable[[np.ndarray], np.ndarray],
    images: np.ndarray,
    maps: np.ndarray,
    target_weights: np.ndarray,
    steps: int = 16,
    batch_size: int = 128,
) -> dict:
    """Mean deletion AUC (lower is better) and insertion AUC (higher is better) over the images."""
    result = {}
    for mode in ("deletion", "insertion"):
        curves = perturbation_curves(predict, images, maps, target_weights, steps, mode, batch_size=batch_size)
        result[f"{mode}_auc"] = float(np.trapezoid(curves, dx=1.0 / steps, axis=1).mean()) if len(curves) else None
    return result
