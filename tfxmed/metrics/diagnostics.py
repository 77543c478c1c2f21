"""Diagnostics of explanation maps that need no ground truth: do they depend on the image, and are
they stable under imperceptible input changes?

- Map specificity: 1 − the mean Pearson correlation of each image's map with the mean map over the
  split. A method painting the same blob on every image scores near 0 and is flagged `near_constant`.
- Max-sensitivity (Yeh et al., NeurIPS 2019, "On the (in)fidelity and sensitivity of explanations"):
  the largest relative change ‖E(x + ε) − E(x)‖ / ‖E(x)‖ over a few uniform perturbations
  ‖ε‖∞ ≤ radius, per image; lower is more stable.
No TensorFlow: the explainer is any callable `explain(images, targets) -> maps`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["map_specificity", "max_sensitivity", "NEAR_CONSTANT_CORRELATION"]

# Maps whose mean correlation with the split's mean map exceeds this are reported as near-constant:
# they show where the model looks on *every* image, not on this one.
NEAR_CONSTANT_CORRELATION = 0.9


def map_specificity(maps: np.ndarray) -> dict:
    """How much the maps of a split differ from their mean map.

    Returns mean correlation with the mean map, specificity (1 − that), the share of constant maps
    and `near_constant` (mean correlation > `NEAR_CONSTANT_CORRELATION`, or every map constant).
    """
    flat = np.asarray(maps, np.float64).reshape(len(maps), -1)
    if len(flat) < 2:
        raise ValueError(f"map specificity needs at least 2 maps, got {len(flat)}")
    centred = flat - flat.mean(1, keepdims=True)
    mean_map = flat.mean(0)
    mean_centred = mean_map - mean_map.mean()
    norms = np.linalg.norm(centred, axis=1) * np.linalg.norm(mean_centred)
    varying = norms > 0
    correlations = (centred[varying] @ mean_centred) / norms[varying]
    # A constant map cannot be correlated; it is as uninformative as a map equal to the mean.
    constant_share = float(1.0 - varying.mean())
    mean_correlation = float((correlations.sum() + (~varying).sum()) / len(flat))
    return {
        "mean_correlation_with_mean_map": mean_correlation,
        "specificity": 1.0 - mean_correlation,
        "constant_maps": constant_share,
        "near_constant": bool(mean_correlation > NEAR_CONSTANT_CORRELATION),
    }


def max_sensitivity(explain: Callable, images: np.ndarray, targets, radius: float = 0.02, samples: int = 4,
                    seed: int = 0) -> dict:
    """Max-sensitivity of `explain` on `images` (targets fixed); `radius` in the images' units."""
    rng = np.random.default_rng(seed)
    images = np.asarray(images, np.float32)
    reference = np.asarray(explain(images, targets), np.float64).reshape(len(images), -1)
    scale = np.linalg.norm(reference, axis=1)
    worst = np.zeros(len(images))
    for _ in range(samples):
        noisy = images + rng.uniform(-radius, radius, images.shape).astype(np.float32)
        changed = np.asarray(explain(noisy, targets), np.float64).reshape(len(images), -1)
        worst = np.maximum(worst, np.linalg.norm(changed - reference, axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        relative = np.where(scale > 0, worst / scale, np.nan)
    return {"max_sensitivity": float(np.nanmean(relative)) if np.isfinite(relative).any() else None,
            "radius": radius, "samples": samples}
