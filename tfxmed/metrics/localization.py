"""Metrics comparing explanation maps with ground-truth localisation masks.

All functions are batched over a leading example axis and work for any number of spatial
dimensions: 2-D images ``[N, H, W]`` and 3-D volumes ``[N, D, H, W]``. A trailing channel axis of
size 1 (``[N, H, W, 1]``) is squeezed away. Masks are treated as foreground where ``mask > 0``.
Per-image results are NaN where the metric is undefined; :func:`localization_summary` turns them
into JSON-serialisable aggregates.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

__all__ = [
    "BINARIZE_METHODS",
    "binarize",
    "iou",
    "pointing_game",
    "energy_pointing_game",
    "localization_summary",
    "tune_binarization",
]

BINARIZE_METHODS = ("fraction_of_max", "top_fraction", "otsu")


def _squeeze_channel(array: np.ndarray, name: str) -> np.ndarray:
    """Drop a trailing channel axis of size 1 and check that a spatial axis remains."""
    array = np.asarray(array)
    if array.ndim >= 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim < 2:
        raise ValueError(
            f"{name} must have shape [num_examples, *spatial] (e.g. [N, H, W] or [N, D, H, W], "
            f"optionally with a trailing channel axis of size 1); got shape {array.shape}"
        )
    return array


def _prepare_maps(maps: np.ndarray) -> np.ndarray:
    """Validate explanation maps and return them as float64 without a channel axis."""
    maps = _squeeze_channel(maps, "maps").astype(np.float64)
    if not np.all(np.isfinite(maps)):
        raise ValueError("maps contain NaN or infinite values")
    return maps


def _prepare_pair(maps: np.ndarray, masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate ``maps`` and ``masks`` together; return float maps and boolean masks."""
    maps = _prepare_maps(maps)
    masks = _squeeze_channel(masks, "masks")
    if maps.shape != masks.shape:
        raise ValueError(
            f"maps and masks must have the same shape [num_examples, *spatial] (after squeezing a "
            f"trailing channel axis of size 1); got maps {maps.shape} and masks {masks.shape}"
        )
    return maps, masks > 0


def binarize(maps: np.ndarray, method: str = "fraction_of_max", value: float = 0.5) -> np.ndarray:
    """Binarise explanation maps per map.

    Args:
        maps: float maps of shape [N, *spatial] (a trailing channel axis of size 1 is squeezed).
        method: ``"fraction_of_max"``: pixels ``>= value * max`` of their map; ``"top_fraction"``:
            the ``ceil(value * num_pixels)`` highest pixels of each map (ties broken by position,
            so exactly that many are selected); ``"otsu"``: pixels above the map's Otsu threshold
            (needs scikit-image; ``value`` is ignored).
        value: the fraction for ``fraction_of_max`` / ``top_fraction``, in (0, 1].

    Returns:
        Boolean array of shape [N, *spatial]. Maps that are zero everywhere are all False for
        every method; with ``fraction_of_max`` so is any map whose maximum is not positive.

    Raises:
        ValueError: for an unknown method, an out-of-range value or invalid maps.
        ImportError: for ``"otsu"`` when scikit-image is not installed.
    """
    if method not in BINARIZE_METHODS:
        raise ValueError(f"unknown binarize method {method!r}; allowed methods: {list(BINARIZE_METHODS)}")
    maps = _prepare_maps(maps)
    num_examples = maps.shape[0]
    flat = maps.reshape(num_examples, -1)
    num_pixels = flat.shape[1]
    nonzero = np.any(flat != 0, axis=1)
    if method != "otsu" and not (0.0 < float(value) <= 1.0):
        raise ValueError(f"value for binarize method {method!r} must be in (0, 1]; got {value}")

    if method == "fraction_of_max":
        maximum = flat.max(axis=1, keepdims=True) if num_pixels else np.zeros((num_examples, 1))
        binary = (flat >= float(value) * maximum) & (maximum > 0)
    elif method == "top_fraction":
        count = min(num_pixels, max(1, math.ceil(float(value) * num_pixels - 1e-9)))
        order = np.argsort(-flat, axis=1, kind="stable")[:, :count]
        binary = np.zeros(flat.shape, dtype=bool)
        np.put_along_axis(binary, order, True, axis=1)
        binary &= nonzero[:, None]
    else:
        try:
            from skimage.filters import threshold_otsu
        except ImportError as error:
            raise ImportError(
                "binarize(method='otsu') needs scikit-image (pip install scikit-image); "
                "use method='fraction_of_max' or 'top_fraction' instead"
            ) from error
        binary = np.zeros(flat.shape, dtype=bool)
        for index in range(num_examples):
            if flat[index].min() < flat[index].max():
                binary[index] = flat[index] > threshold_otsu(flat[index])
    return binary.reshape(maps.shape)


def iou(
    maps: np.ndarray,
    masks: np.ndarray,
    method: str = "fraction_of_max",
    value: float = 0.5,
) -> np.ndarray:
    """Per-image intersection over union of the binarised map and ``masks > 0``.

    Returns a float array of shape [N]; NaN where both the mask and the binarised map are empty.
    """
    maps, masks = _prepare_pair(maps, masks)
    binary = binarize(maps, method=method, value=value)
    num_examples = maps.shape[0]
    binary = binary.reshape(num_examples, -1)
    masks = masks.reshape(num_examples, -1)
    intersection = np.count_nonzero(binary & masks, axis=1).astype(np.float64)
    union = np.count_nonzero(binary | masks, axis=1).astype(np.float64)
    result = np.full(num_examples, np.nan)
    np.divide(intersection, union, out=result, where=union > 0)
    return result


def tune_binarization(
    maps: np.ndarray,
    masks: np.ndarray,
    method: str = "fraction_of_max",
    candidates=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9),
) -> tuple[float, dict]:
    """The binarisation value maximising mean IoU on these (validation) maps: (best, {value: mean IoU}).

    Choose it on validation and apply it to test, so the test IoU is not tuned on test. Ties go to the
    smaller value. Not for ``"otsu"``, which has no value.
    """
    if method == "otsu":
        raise ValueError("binarize method 'otsu' has no value to tune")
    scores = {}
    for candidate in candidates:
        values = iou(maps, masks, method, float(candidate))
        finite = values[np.isfinite(values)]
        scores[float(candidate)] = float(finite.mean()) if finite.size else float("nan")
    defined = {k: v for k, v in scores.items() if math.isfinite(v)}
    if not defined:
        raise ValueError("no map/mask pair defines an IoU: nothing to tune on")
    best = max(defined, key=lambda k: (defined[k], -k))
    return best, scores


def _ball(radius: int, num_dimensions: int) -> np.ndarray:
    """Boolean Euclidean ball (disk in 2-D, sphere in 3-D) of the given radius."""
    offsets = np.indices((2 * radius + 1,) * num_dimensions) - radius
    return np.sum(offsets ** 2, axis=0) <= radius ** 2


def pointing_game(maps: np.ndarray, masks: np.ndarray, tolerance: int = 0) -> np.ndarray:
    """Per-image pointing-game hit (1.0) or miss (0.0).

    A hit means the maximum of the map (its first occurrence in C order) lies inside the mask
    dilated by a Euclidean ball of radius ``tolerance`` pixels. Images with an empty mask are NaN.
    """
    if int(tolerance) != tolerance or tolerance < 0:
        raise ValueError(f"tolerance must be a non-negative integer number of pixels; got {tolerance}")
    maps, masks = _prepare_pair(maps, masks)
    num_examples = maps.shape[0]
    if tolerance > 0:
        structure = _ball(int(tolerance), maps.ndim - 1)[np.newaxis]
        masks_dilated = ndimage.binary_dilation(masks, structure=structure)
    else:
        masks_dilated = masks
    flat_maps = maps.reshape(num_examples, -1)
    flat_masks = masks_dilated.reshape(num_examples, -1)
    has_mask = np.any(masks.reshape(num_examples, -1), axis=1)
    if flat_maps.shape[1] == 0:
        return np.full(num_examples, np.nan)
    peaks = np.argmax(flat_maps, axis=1)
    hits = flat_masks[np.arange(num_examples), peaks].astype(np.float64)
    return np.where(has_mask, hits, np.nan)


def energy_pointing_game(maps: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Per-image share of the positive map energy that falls inside the mask.

    ``sum(max(map, 0) * mask) / sum(max(map, 0))``; NaN where the mask is empty or the map has no
    positive values.
    """
    maps, masks = _prepare_pair(maps, masks)
    num_examples = maps.shape[0]
    positive = np.clip(maps, 0.0, None).reshape(num_examples, -1)
    masks = masks.reshape(num_examples, -1)
    inside = np.sum(positive * masks, axis=1)
    total = np.sum(positive, axis=1)
    result = np.full(num_examples, np.nan)
    np.divide(inside, total, out=result, where=(total > 0) & np.any(masks, axis=1))
    return result


def _nan_aggregate(values: np.ndarray, function) -> float | None:
    """Apply ``function`` to the finite entries of ``values``; ``None`` when there are none."""
    finite = values[np.isfinite(values)]
    return float(function(finite)) if finite.size else None


def localization_summary(
    maps: np.ndarray,
    masks: np.ndarray,
    method: str = "fraction_of_max",
    value: float = 0.5,
    tolerance: int = 0,
) -> dict:
    """Aggregate localisation metrics over the images whose mask is not empty.

    Returns ``{"iou_mean", "iou_median", "pointing_game", "energy_pointing_game",
    "num_evaluated"}`` with NaN-ignoring means (median for ``iou_median``); a value is ``None``
    when nothing could be evaluated. The dict is JSON-serialisable.
    """
    maps, masks = _prepare_pair(maps, masks)
    num_examples = maps.shape[0]
    evaluated = np.any(masks.reshape(num_examples, -1), axis=1)
    iou_values = iou(maps, masks, method=method, value=value)[evaluated]
    pointing_values = pointing_game(maps, masks, tolerance=tolerance)[evaluated]
    energy_values = energy_pointing_game(maps, masks)[evaluated]
    return {
        "iou_mean": _nan_aggregate(iou_values, np.mean),
        "iou_median": _nan_aggregate(iou_values, np.median),
        "pointing_game": _nan_aggregate(pointing_values, np.mean),
        "energy_pointing_game": _nan_aggregate(energy_values, np.mean),
        "num_evaluated": int(np.count_nonzero(evaluated)),
    }
