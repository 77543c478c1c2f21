import json

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from tfxmed.metrics.statistics import (
    bootstrap_ci,
    delong_test,
    mcnemar_test,
    paired_tests,
    threshold_for_sensitivity,
    youden_threshold,
)


def _delong_by_definition(labels, scores_a, scores_b):
    """DeLong et al. (1988) written out with explicit pairwise comparisons (O(m·n))."""
    def components(scores):
        x, y = scores[labels == 1], scores[labels == 0]
        psi = (x[:, None] > y[None]).astype(float) + 0.5 * (x[:, None] == y[None])
        return psi.mean(), psi.mean(axis=1), psi.mean(axis=0)
    auc_a, v10_a, v01_a = components(scores_a)
    auc_b, v10_b, v01_b = components(scores_b)
    m, n = len(v10_a), len(v01_a)
    def cov(u, v):
        return ((u - u.mean()) * (v - v.mean())).sum() / (len(u) - 1)
    var = (cov(v10_a, v10_a) + cov(v10_b, v10_b) - 2 * cov(v10_a, v10_b)) / m \
        + (cov(v01_a, v01_a) + cov(v01_b, v01_b) - 2 * cov(v01_a, v01_b)) / n
    z = (auc_a - auc_b) / np.sqrt(var)
    return auc_a, auc_b, z, 2 * stats.norm.sf(abs(z))


def test_delong_matches_the_pairwise_definition_with_ties():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 60)
    scores_a = np.round(labels * 0.8 + rng.normal(0, 0.6, 60), 1)  # rounded: many ties
    scores_b = np.round(labels * 0.3 + rng.normal(0, 0.6, 60), 1)
    result = delong_test(labels, scores_a, scores_b)
    auc_a, auc_b, z, p = _delong_by_definition(labels, scores_a, scores_b)
    assert result["auc_a"] == pytest.approx(roc_auc_score(labels, scores_a)) == pytest.approx(auc_a)
    assert result["auc_b"] == pytest.approx(auc_b)
    assert result["z"] == pytest.approx(z, rel=1e-9) and result["p_value"] == pytest.approx(p, rel=1e-9)
    assert delong_test(labels, scores_a, scores_a)["p_value"] == 1.0


def test_mcnemar_exact_and_corrected_by_hand():
    # 10 cases only A gets right, 3 only B, 20 both, 7 neither.
    a = np.array([1] * 10 + [0] * 3 + [1] * 20 + [0] * 7, bool)
    b = np.array([0] * 10 + [1] * 3 + [1] * 20 + [0] * 7, bool)
    exact = mcnemar_test(a, b)
    assert exact["exact"] and (exact["only_a_correct"], exact["only_b_correct"]) == (10, 3)
    assert exact["p_value"] == pytest.approx(2 * (1 + 13 + 78 + 286) / 2**13)  # 2·P(X ≤ 3), X ~ Bin(13, ½)
    corrected = mcnemar_test(a, b, exact=False)
    assert corrected["statistic"] == pytest.approx(36 / 13)
    assert corrected["p_value"] == pytest.approx(stats.chi2.sf(36 / 13, 1))


def test_paired_tests_by_hand():
    a, b = np.array([1.0, 2.0, 3.0, 4.0]), np.array([0.5, 1.5, 3.5, 2.0])
    d = a - b
    t = d.mean() / (d.std(ddof=1) / np.sqrt(4))
    result = paired_tests(a, b)
    assert result["mean_difference"] == pytest.approx(0.625)
    assert result["t_statistic"] == pytest.approx(t)
    assert result["t_p_value"] == pytest.approx(2 * stats.t.sf(abs(t), 3))
    assert result["wilcoxon_p_value"] is not None
    with pytest.raises(ValueError, match="equal-length"):
        paired_tests([1, 2], [1, 2, 3])


def test_bootstrap_ci_brackets_the_estimate_and_drops_undefined_resamples():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 200)
    scores = labels + rng.normal(0, 1.0, 200)
    ci = bootstrap_ci(roc_auc_score, labels, scores, resamples=300)
    assert ci["low"] < ci["estimate"] < ci["high"] and ci["high"] - ci["low"] < 0.2
    assert ci == bootstrap_ci(roc_auc_score, labels, scores, resamples=300)  # seeded
    separable = bootstrap_ci(roc_auc_score, np.array([0, 0, 0, 1]), np.array([0.1, 0.2, 0.3, 0.9]), resamples=200)
    assert separable["dropped"] > 0 and separable["low"] == separable["high"] == 1.0


def test_thresholds_by_hand():
    labels, scores = np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])
    # ROC points (threshold: TPR, FPR): 0.8: (.5, 0), 0.4: (.5, .5), 0.35: (1, .5), 0.1: (1, 1).
    assert youden_threshold(labels, scores) == pytest.approx(0.8)
    assert threshold_for_sensitivity(labels, scores, 1.0) == pytest.approx(0.35)
    assert threshold_for_sensitivity(labels, scores, 0.5) == pytest.approx(0.8)


def test_a_classifier_no_better_than_chance_gets_a_finite_threshold_that_calls_nothing_positive():
    labels, scores = np.array([1, 1, 0, 0]), np.array([0.1, 0.2, 0.3, 0.4])  # inverted: J <= 0 everywhere
    threshold = youden_threshold(labels, scores)
    assert np.isfinite(threshold) and threshold > scores.max() and threshold == pytest.approx(0.4)
    json.dumps({"threshold": threshold}, allow_nan=False)
