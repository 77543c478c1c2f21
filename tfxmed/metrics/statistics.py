"""Statistics for comparing classifiers: bootstrap CIs, DeLong, McNemar, paired tests, mean ± sd, thresholds.

Built on scipy and scikit-learn; the DeLong test follows Sun & Xu (2014), "Fast implementation of
DeLong's algorithm for comparing the areas under correlated receiver operating characteristic
curves" (midrank formulation).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
from scipy import stats
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import roc_curve

__all__ = [
    "bootstrap_ci",
    "delong_test",
    "mcnemar_test",
    "paired_tests",
    "mean_sd",
    "youden_threshold",
    "threshold_for_sensitivity",
]


def bootstrap_ci(
    metric: Callable[[np.ndarray, np.ndarray], float],
    labels: np.ndarray,
    scores: np.ndarray,
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 42,
) -> dict:
    """Percentile bootstrap CI of `metric(labels, scores)` over resampled cases.

    Resamples on which the metric is undefined (e.g. AUC with one class) are dropped and counted.
    """
    labels, scores = np.asarray(labels), np.asarray(scores)
    rng = np.random.default_rng(seed)
    values = []
    with warnings.catch_warnings():  # scikit-learn warns (or raises) when a resample has one class
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        for _ in range(resamples):
            index = rng.integers(0, len(labels), len(labels))
            try:
                value = float(metric(labels[index], scores[index]))
            except ValueError:
                continue
            if np.isfinite(value):
                values.append(value)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(values, [tail, 1.0 - tail]) if values else (np.nan, np.nan)
    return {"estimate": float(metric(labels, scores)), "low": float(low), "high": float(high),
            "confidence": confidence, "resamples": len(values), "dropped": resamples - len(values)}


def _midranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties given their average rank."""
    return stats.rankdata(values, method="average")


def _delong_components(labels: np.ndarray, scores: np.ndarray):
    """AUC and DeLong's structural components V10 (per positive) and V01 (per negative)."""
    positives, negatives = scores[labels == 1], scores[labels == 0]
    m, n = len(positives), len(negatives)
    if m == 0 or n == 0:
        raise ValueError("DeLong's test needs both positive and negative cases")
    rank_all = _midranks(np.concatenate([positives, negatives]))
    rank_positives, rank_negatives = _midranks(positives), _midranks(negatives)
    v10 = (rank_all[:m] - rank_positives) / n
    v01 = 1.0 - (rank_all[m:] - rank_negatives) / m
    return v10.mean(), v10, v01


def delong_test(labels: np.ndarray, scores_a: np.ndarray, scores_b: np.ndarray) -> dict:
    """Two-sided DeLong test of AUC(a) = AUC(b) for two models scored on the same binary cases."""
    labels = np.asarray(labels).astype(int)
    auc_a, v10_a, v01_a = _delong_components(labels, np.asarray(scores_a, float))
    auc_b, v10_b, v01_b = _delong_components(labels, np.asarray(scores_b, float))
    s10 = np.cov(np.vstack([v10_a, v10_b]))
    s01 = np.cov(np.vstack([v01_a, v01_b]))
    covariance = s10 / len(v10_a) + s01 / len(v01_a)
    variance = covariance[0, 0] + covariance[1, 1] - 2 * covariance[0, 1]
    z = (auc_a - auc_b) / np.sqrt(variance) if variance > 0 else 0.0
    return {"auc_a": float(auc_a), "auc_b": float(auc_b), "z": float(z),
            "p_value": float(2 * stats.norm.sf(abs(z))), "covariance": covariance.tolist()}


def mcnemar_test(correct_a: np.ndarray, correct_b: np.ndarray, exact: bool | None = None) -> dict:
    """McNemar's test on paired decisions (True = correct). Exact binomial when discordant pairs < 25."""
    correct_a, correct_b = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    only_a = int(np.sum(correct_a & ~correct_b))
    only_b = int(np.sum(~correct_a & correct_b))
    discordant = only_a + only_b
    if exact is None:
        exact = discordant < 25
    if discordant == 0:
        p_value, statistic = 1.0, 0.0
    elif exact:
        statistic = float(min(only_a, only_b))
        p_value = float(stats.binomtest(only_a, discordant, 0.5).pvalue)
    else:  # chi-square with continuity correction
        statistic = (abs(only_a - only_b) - 1) ** 2 / discordant
        p_value = float(stats.chi2.sf(statistic, 1))
    return {"only_a_correct": only_a, "only_b_correct": only_b, "statistic": float(statistic),
            "p_value": p_value, "exact": bool(exact)}


def paired_tests(values_a, values_b) -> dict:
    """Paired t-test and Wilcoxon signed-rank test (e.g. per-fold metrics of two models)."""
    values_a, values_b = np.asarray(values_a, float), np.asarray(values_b, float)
    if values_a.shape != values_b.shape or values_a.ndim != 1 or len(values_a) < 2:
        raise ValueError(f"need two equal-length 1-D samples of >= 2 values; got {values_a.shape} and {values_b.shape}")
    differences = values_a - values_b
    t_test = stats.ttest_rel(values_a, values_b) if np.any(differences != differences[0]) else None
    wilcoxon = stats.wilcoxon(values_a, values_b) if np.any(differences != 0) else None
    return {
        "mean_difference": float(differences.mean()),
        "t_statistic": None if t_test is None else float(t_test.statistic),
        "t_p_value": None if t_test is None else float(t_test.pvalue),
        "wilcoxon_statistic": None if wilcoxon is None else float(wilcoxon.statistic),
        "wilcoxon_p_value": None if wilcoxon is None else float(wilcoxon.pvalue),
    }


def mean_sd(values) -> dict:
    """{"mean", "sd"} of a 1-D sample (e.g. a metric over seeds or folds); sd with ddof=1, 0 for one value."""
    values = np.asarray(values, float)
    return {"mean": float(values.mean()), "sd": float(values.std(ddof=1)) if len(values) > 1 else 0.0}


def youden_threshold(labels: np.ndarray, scores: np.ndarray) -> float:
    """The score threshold maximising sensitivity + specificity − 1 (choose it on validation)."""
    fpr, tpr, thresholds = roc_curve(labels, scores)
    return _finite(thresholds[np.argmax(tpr - fpr)], scores)


def _finite(threshold: float, scores) -> float:
    """roc_curve's first threshold is +inf ("call nothing positive"): the next float above the top score says
    the same and stays a number (JSON has no infinity). It is chosen when no threshold beats chance."""
    return float(threshold) if np.isfinite(threshold) else float(np.nextafter(np.max(scores), np.inf))


def threshold_for_sensitivity(labels: np.ndarray, scores: np.ndarray, sensitivity: float) -> float:
    """The highest threshold whose sensitivity (TPR) is at least `sensitivity`."""
    if not 0.0 < sensitivity <= 1.0:
        raise ValueError(f"sensitivity must be in (0, 1]; got {sensitivity}")
    fpr, tpr, thresholds = roc_curve(labels, scores)
    return _finite(thresholds[np.argmax(tpr >= sensitivity)], scores)
