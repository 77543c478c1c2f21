"""Which examples show a lesion: the one definition that evaluation, reports, training and scripts share.

An example *has a lesion* when it carries a ground-truth mask (`has_mask`) and some pixel of that
mask is above 0.5 (masks are resized bilinearly, so their edges hold fractions). NumPy only.
"""

from __future__ import annotations

import numpy as np

__all__ = ["has_lesion", "lesion_examples", "lesions_first"]


def has_lesion(masks: np.ndarray, has_mask: np.ndarray | None = None) -> np.ndarray:
    """Per example [N] (bool): its mask [N, ...] marks a lesion (and `has_mask` [N], when given, is set)."""
    masks = np.asarray(masks)
    marked = masks.reshape(len(masks), int(np.prod(masks.shape[1:]))).max(-1, initial=0.0) > 0.5
    return marked if has_mask is None else marked & np.asarray(has_mask).astype(bool).reshape(len(masks))


def lesion_examples(data: dict) -> np.ndarray:
    """Indices of the examples of `data` (arrays `mask`, `has_mask`) that have a lesion, in order."""
    return np.flatnonzero(has_lesion(data["mask"], data.get("has_mask")))


def lesions_first(data: dict, count: int | None = None, largest_first: bool = False) -> np.ndarray:
    """Indices of `data`'s examples with the lesion examples first (each group in order), at most `count`.

    `largest_first` orders the lesion examples (and then the rest) by mask area, largest first.
    """
    lesion = has_lesion(data["mask"], data.get("has_mask"))
    if largest_first:
        masks = np.asarray(data["mask"])
        area = masks.reshape(len(masks), int(np.prod(masks.shape[1:]))).sum(-1)
        order = np.lexsort((-area, ~lesion))  # the last key sorts first; lexsort is stable
    else:
        order = np.argsort(~lesion, kind="stable")
    return order[:count]
