"""Agreement between raters: Cohen's κ for two (scikit-learn), Fleiss' κ for any number. NumPy only.

Cohen's κ is scikit-learn's `cohen_kappa_score`, unweighted and quadratic-weighted, with the rating
scale passed as `labels` so that a category nobody used still counts. Fleiss' κ follows Fleiss (1971),
"Measuring nominal scale agreement among many raters", Psychological Bulletin 76(5): 378–382, on a
subjects × categories table of counts with the same number of raters per subject.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import cohen_kappa_score

__all__ = ["cohen_kappas", "category_counts", "fleiss_kappa"]


def _kappa(a: np.ndarray, b: np.ndarray, labels: Sequence, weights: str | None) -> float | None:
    with warnings.catch_warnings():  # scikit-learn warns (and returns NaN) when chance agreement is total
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        value = float(cohen_kappa_score(a, b, labels=list(labels), weights=weights))
    return value if np.isfinite(value) else None


def cohen_kappas(a: Sequence, b: Sequence, labels: Sequence) -> dict:
    """Cohen's κ of two raters' ratings of the same items, in the same order: unweighted and quadratic.

    None where κ is undefined (both raters used one and the same category throughout).
    """
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"two raters' ratings must be 1-D and of the same length; got shapes {a.shape} and {b.shape}")
    if len(a) == 0:
        return {"items": 0, "unweighted": None, "quadratic": None}
    return {"items": int(len(a)), "unweighted": _kappa(a, b, labels, None),
            "quadratic": _kappa(a, b, labels, "quadratic")}


def category_counts(ratings: np.ndarray, categories: Sequence) -> np.ndarray:
    """[subjects, raters] ratings → [subjects, categories] counts (Fleiss' table); values outside `categories` raise."""
    ratings = np.asarray(ratings)
    if ratings.ndim != 2:
        raise ValueError(f"ratings must be [subjects, raters]; got shape {ratings.shape}")
    unknown = sorted(set(ratings.ravel().tolist()) - set(categories))
    if unknown:
        raise ValueError(f"ratings {unknown} are not among the categories {list(categories)}")
    return np.stack([(ratings == category).sum(axis=1) for category in categories], axis=1)


def fleiss_kappa(table: np.ndarray) -> float | None:
    """Fleiss' κ of a [subjects, categories] table of counts, each row summing to the number of raters n ≥ 2.

    κ = (P̄ − P̄e) / (1 − P̄e), where P̄ is the mean over subjects of the share of agreeing rater pairs,
    P_i = (Σ_j n_ij² − n) / (n (n − 1)), and P̄e = Σ_j p_j² with p_j the share of all ratings in category j.
    None where P̄e = 1 (every rating in one category).
    """
    table = np.asarray(table, dtype=np.float64)
    if table.ndim != 2 or table.shape[0] == 0:
        raise ValueError(f"the table must be [subjects, categories] with at least one subject; got shape {table.shape}")
    raters = table.sum(axis=1)
    if not np.all(raters == raters[0]) or raters[0] < 2:
        raise ValueError(f"every subject needs the same number (≥ 2) of ratings; got row sums {sorted(set(raters))}")
    n = raters[0]
    agreement = ((table ** 2).sum(axis=1) - n) / (n * (n - 1))
    shares = table.sum(axis=0) / table.sum()
    expected = float((shares ** 2).sum())
    if np.isclose(expected, 1.0):
        return None
    return float((agreement.mean() - expected) / (1.0 - expected))
