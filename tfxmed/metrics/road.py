"""ROAD: RemOve And Debias (Rong et al., ICML 2022) with noisy linear imputation.

For each fraction p, the top-p (MoRF, most relevant first) or bottom-p (LeRF, least relevant first)
pixels of the map are removed and *imputed* from their neighbours instead of being set to a constant,
so the perturbed image does not leak the removed shape: every removed pixel equals the weighted mean of
its 8 neighbours (weights 1/6 direct, 1/12 diagonal, as in the authors' code), which is one sparse
linear system per image (scipy), plus Gaussian noise (σ = `noise`). The target-class probability is
recorded per fraction: a faithful map makes the MoRF curve fall fast (low mean) and the LeRF curve stay
high (high mean). Model calls are batched.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy import sparse
from scipy.sparse import linalg as sparse_linalg

from tfxmed.metrics.faithfulness import _checked, _ranks, _target_probability

__all__ = ["noisy_linear_impute", "road_curves", "road", "DEFAULT_FRACTIONS"]

DEFAULT_FRACTIONS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
_NEIGHBOURS = [((-1, -1), 1 / 12), ((-1, 0), 1 / 6), ((-1, 1), 1 / 12), ((0, -1), 1 / 6),
               ((0, 1), 1 / 6), ((1, -1), 1 / 12), ((1, 0), 1 / 6), ((1, 1), 1 / 12)]


def noisy_linear_impute(image: np.ndarray, removed: np.ndarray, noise: float = 0.01,
                        rng: np.random.Generator | None = None) -> np.ndarray:
    """`image` [H, W, C] with the `removed` [H, W] pixels replaced by the neighbour-weighted solution.

    Solves Σ_j w_ij (x_i − x_j) = 0 for every removed pixel i over its in-image neighbours j (known
    neighbours move to the right-hand side), then adds N(0, noise²) to the imputed values.
    """
    height, width, channels = image.shape
    unknown = np.flatnonzero(removed.reshape(-1))
    if not len(unknown):
        return image.copy()
    position = np.full(height * width, -1)
    position[unknown] = np.arange(len(unknown))
    flat = image.reshape(-1, channels).astype(np.float64)
    rows_y, rows_x = np.divmod(unknown, width)
    diagonal = np.zeros(len(unknown))
    right_side = np.zeros((len(unknown), channels))
    entries_row, entries_col, entries_value = [], [], []
    for (dy, dx), weight in _NEIGHBOURS:
        y, x = rows_y + dy, rows_x + dx
        inside = (y >= 0) & (y < height) & (x >= 0) & (x < width)
        neighbour = np.where(inside, y * width + x, 0)
        diagonal += weight * inside
        known = inside & (position[neighbour] < 0)
        right_side[known] += weight * flat[neighbour[known]]
        coupled = inside & (position[neighbour] >= 0)
        entries_row.append(np.flatnonzero(coupled))
        entries_col.append(position[neighbour[coupled]])
        entries_value.append(np.full(int(coupled.sum()), -weight))
    matrix = sparse.csr_matrix(
        (np.concatenate([diagonal, *entries_value]),
         (np.concatenate([np.arange(len(unknown)), *entries_row]),
          np.concatenate([np.arange(len(unknown)), *entries_col]))),
        shape=(len(unknown), len(unknown)),
    )
    solution = sparse_linalg.spsolve(matrix.tocsc(), right_side).reshape(len(unknown), channels)
    if noise > 0:
        solution = solution + (rng or np.random.default_rng(0)).normal(0.0, noise, solution.shape)
    imputed = flat.copy()
    imputed[unknown] = solution
    return imputed.reshape(image.shape).astype(image.dtype)


def road_curves(
    predict: Callable[[np.ndarray], np.ndarray],
    images: np.ndarray,
    maps: np.ndarray,
    target_weights: np.ndarray,
    order: str = "morf",
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    noise: float = 0.01,
    seed: int = 0,
    batch_size: int = 128,
) -> np.ndarray:
    """Target probability after imputing the top (`morf`) or bottom (`lerf`) fraction: [N, len(fractions)]."""
    if order not in ("morf", "lerf"):
        raise ValueError(f"order must be 'morf' or 'lerf'; got '{order}'")
    images, maps = _checked(images, maps)
    if images.ndim != 4:
        raise ValueError(f"ROAD imputes 2-D images [N, H, W, C]; got shape {images.shape}")
    rng = np.random.default_rng(seed)
    ranks = _ranks(maps if order == "morf" else -maps)
    pixels = int(np.prod(maps.shape[1:]))
    perturbed = np.stack([
        np.stack([noisy_linear_impute(image, rank < round(fraction * pixels), noise, rng) for fraction in fractions])
        for image, rank in zip(images, ranks)
    ])  # [N, F, H, W, C]
    targets = np.repeat(np.asarray(target_weights, np.float32), len(fractions), axis=0)
    flat = perturbed.reshape(-1, *images.shape[1:])
    return _target_probability(predict, flat, targets, batch_size).reshape(len(images), len(fractions))


def road(predict, images, maps, target_weights, fractions: Sequence[float] = DEFAULT_FRACTIONS,
         noise: float = 0.01, seed: int = 0, batch_size: int = 128) -> dict:
    """Mean ROAD MoRF (lower is better) and LeRF (higher is better) probability over fractions and images."""
    result = {}
    for order in ("morf", "lerf"):
        curves = road_curves(predict, images, maps, target_weights, order, fractions, noise, seed, batch_size)
        result[f"road_{order}"] = float(curves.mean()) if curves.size else None
        result[f"road_{order}_curve"] = curves.mean(0).tolist() if curves.size else []
    result["road_fractions"] = list(fractions)
    return result
