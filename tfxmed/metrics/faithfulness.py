"""Deletion and insertion (Petsiuk et al., 2018, RISE): does the map rank the pixels the model uses?

For each image, pixels are ranked by the map (most important first). *Deletion* replaces the top
k/steps of them with the baseline (zero) and tracks the target-class probability; *insertion* starts
from a blurred copy and puts the top pixels back. Each curve is integrated over the fraction of pixels
(trapezoid rule on [0, 1]): a faithful map has a low deletion AUC and a high insertion AUC.
All perturbed images of a batch of maps are scored together, in batches of `batch_size`.

`average_drop_increase` follows Grad-CAM++ (Chattopadhyay et al., 2018): the image is multiplied by
its map (scaled to [0, 1]); average drop = mean of max(0, Y − O) / Y (in %), increase in confidence =
% of images with O > Y, where Y and O are the target probability before and after. On standardised
inputs the multiplication moves unexplained pixels towards the training mean.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import ndimage

from tfxmed.metrics.maps import minmax_per_map

__all__ = ["deletion_insertion", "perturbation_curves", "average_drop_increase"]


def _ranks(maps: np.ndarray) -> np.ndarray:
    """Rank of every pixel within its map, 0 = most important (ties broken by position)."""
    flat = maps.reshape(len(maps), -1)
    order = np.argsort(-flat, axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(flat.shape[1])[None].repeat(len(flat), 0), axis=1)
    return ranks.reshape(maps.shape)


def _checked(images, maps) -> tuple[np.ndarray, np.ndarray]:
    images, maps = np.asarray(images, np.float32), np.asarray(maps, np.float32)
    if maps.shape != images.shape[:-1]:
        raise ValueError(f"maps must have shape {images.shape[:-1]} (one per image, input resolution); "
                         f"got {maps.shape}")
    return images, maps


def _target_probability(predict, images, target_weights, batch_size) -> np.ndarray:
    """Probability of each image's target (the mean over several target classes), batched: [N]."""
    probabilities = np.concatenate([predict(images[i : i + batch_size]) for i in range(0, len(images), batch_size)])
    weights = np.asarray(target_weights, np.float32)
    return (probabilities * weights / np.maximum(weights.sum(-1, keepdims=True), 1e-12)).sum(-1)


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
    images, maps = _checked(images, maps)
    count, pixels = len(images), int(np.prod(images.shape[1:-1]))
    ranks = _ranks(maps)[..., None]  # [N, H, W, 1]
    if mode == "deletion":
        start, end = images, np.zeros_like(images)
    else:
        start = ndimage.gaussian_filter(images, sigma=(0, *[blur_sigma] * (images.ndim - 2), 0))  # 2-D or 3-D
        end = images
    thresholds = np.round(np.linspace(0, pixels, steps + 1)).astype(int)
    perturbed = np.stack([np.where(ranks < t, end, start) for t in thresholds], axis=1)  # [N, S+1, H, W, C]
    flat = perturbed.reshape(-1, *images.shape[1:])
    targets = np.repeat(np.asarray(target_weights, np.float32), steps + 1, axis=0)  # rows follow `flat`
    return _target_probability(predict, flat, targets, batch_size).reshape(count, steps + 1)


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


def average_drop_increase(
    predict: Callable[[np.ndarray], np.ndarray],
    images: np.ndarray,
    maps: np.ndarray,
    target_weights: np.ndarray,
    batch_size: int = 128,
) -> dict:
    """Average drop % (lower is better) and increase in confidence % (higher is better)."""
    images, maps = _checked(images, maps)
    scaled = minmax_per_map(maps)
    before = _target_probability(predict, images, target_weights, batch_size)
    after = _target_probability(predict, images * scaled[..., None], target_weights, batch_size)
    drop = np.maximum(0.0, before - after) / np.maximum(before, 1e-12)
    return {"average_drop_percent": float(100 * drop.mean()) if len(drop) else None,
            "increase_in_confidence_percent": float(100 * np.mean(after > before)) if len(drop) else None}
