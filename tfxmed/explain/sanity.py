"""Model-parameter randomisation test (Adebayo et al., 2018, "Sanity checks for saliency maps").

Layers are re-initialised one by one from the output down (cascading), on a copy of the model, and
after each step the maps are compared with the trained model's maps: Spearman rank correlation
(scipy) and SSIM (scikit-image) per image, averaged. A method that passes the check gives maps that
drift away (both similarities fall) as more of the model is randomised; a method whose maps barely
change is explaining the input, not the model.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np
from scipy import stats
from skimage.metrics import structural_similarity

from tfxmed.metrics.diagnostics import map_specificity, max_sensitivity
from tfxmed.metrics.maps import minmax_per_map
from tfxmed.models.spec import declare_spec, declared_spec

__all__ = ["cascading_randomization", "diagnose"]


def _similarity(first: np.ndarray, second: np.ndarray) -> tuple[float, float]:
    spearman, ssim = [], []
    for a, b in zip(first, second):
        if np.ptp(a) == 0 or np.ptp(b) == 0:  # a constant map has no ranking
            spearman.append(0.0)
        else:
            spearman.append(stats.spearmanr(a.ravel(), b.ravel()).statistic)
        scaled = minmax_per_map(np.stack([a, b]), floor=1e-12)
        ssim.append(structural_similarity(scaled[0], scaled[1], data_range=1.0))
    return float(np.mean(spearman)), float(np.mean(ssim))


def cascading_randomization(
    model: keras.Model,
    make_explainer: Callable[[keras.Model], Callable],
    images: np.ndarray,
    targets=None,
    seed: int = 42,
    checkpoints: int | None = None,
) -> list[dict]:
    """[{layer, spearman, ssim}] after randomising each weighted layer, output first (cumulative).

    The first row (layer None) compares the trained maps with themselves. `targets` default to the
    trained model's predicted classes, and stay fixed while the copy is randomised. `checkpoints`
    compares only at that many evenly spaced depths (always the logits and the whole model), for
    deep models where one comparison per layer costs too much.
    """
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    if declared_spec(model) is not None:  # the copy is explained like the model (same layer names)
        declare_spec(copy, declared_spec(model))
    explainer = make_explainer(copy)
    if targets is None:
        targets = np.argmax(np.asarray(model.predict(images, verbose=0)), axis=-1)
    original = np.asarray(explainer(images, targets))
    rng = np.random.default_rng(seed)
    rows = [{"layer": None, "spearman": 1.0, "ssim": 1.0}]
    weighted = [layer for layer in reversed(copy.layers) if layer.trainable_weights]
    compared = set(range(len(weighted)))
    if checkpoints:
        compared = {int(round(i)) for i in np.linspace(0, len(weighted) - 1, max(2, checkpoints))}
    for index, layer in enumerate(weighted):
        for weight in layer.trainable_weights:
            value = weight.numpy()
            scale = float(value.std()) or 0.05
            weight.assign(rng.normal(0.0, scale, value.shape).astype(value.dtype))
        if index in compared:
            spearman, ssim = _similarity(original, np.asarray(explainer(images, targets)))
            rows.append({"layer": layer.name, "randomized_layers": index + 1, "spearman": spearman, "ssim": ssim})
    return rows


def diagnose(model: keras.Model, make_explainer: Callable[[keras.Model], Callable], images: np.ndarray,
             targets, checkpoints: int = 3, radius: float = 0.02) -> dict:
    """Ground-truth-free checks of one method on `images`: map specificity (with the near-constant
    flag), max-sensitivity under ±`radius` noise, and the cascading randomisation at a few depths."""
    explainer = make_explainer(model)
    maps = np.asarray(explainer(images, targets))
    rows = cascading_randomization(model, make_explainer, images, targets, checkpoints=checkpoints)
    return {
        **map_specificity(maps),
        **max_sensitivity(explainer, images, targets, radius=radius),
        "randomization": rows,
        "spearman_logits_randomized": rows[1]["spearman"],
        "spearman_all_randomized": rows[-1]["spearman"],
    }
