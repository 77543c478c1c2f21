"""Agreement between raters (`tfxmed.metrics.agreement`): Cohen's κ against scikit-learn and by hand,
Fleiss' κ against the worked example of Fleiss (1971)."""

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from tfxmed.metrics.agreement import category_counts, cohen_kappas, fleiss_kappa

SCALE = (1, 2, 3, 4, 5)

# Fleiss (1971), as reproduced in the "Fleiss' kappa" article of Wikipedia: 10 subjects, 14 raters,
# 5 categories; P̄ = 0.378, P̄e = 0.213, κ = 0.210.
FLEISS_EXAMPLE = np.array([
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
])


@pytest.mark.parametrize("a, b", [
    ([1, 2, 3, 4, 5, 3, 2], [1, 2, 3, 4, 5, 3, 2]),  # perfect agreement
    ([1, 1, 2, 2], [1, 2, 1, 2]),  # chance level: observed = expected agreement = 1/2
    ([5, 4, 4, 3, 1, 2, 5, 5, 3, 2], [4, 4, 5, 3, 2, 2, 5, 3, 3, 1]),
    ([1, 5, 1, 5, 2], [5, 1, 5, 1, 4]),  # systematic disagreement
])
def test_cohen_kappa_is_scikit_learns(a, b):
    kappas = cohen_kappas(a, b, SCALE)
    assert kappas["items"] == len(a)
    assert kappas["unweighted"] == pytest.approx(cohen_kappa_score(a, b, labels=list(SCALE)))
    assert kappas["quadratic"] == pytest.approx(cohen_kappa_score(a, b, labels=list(SCALE), weights="quadratic"))


def test_cohen_kappa_hand_computed_values():
    assert cohen_kappas([1, 2, 3, 4, 5], [1, 2, 3, 4, 5], SCALE) == {"items": 5, "unweighted": 1.0, "quadratic": 1.0}
    assert cohen_kappas([1, 1, 2, 2], [1, 2, 1, 2], SCALE)["unweighted"] == pytest.approx(0.0)
    # 2×2 table [[20, 5], [10, 15]]: p_o = 0.7, p_e = 0.5·0.6 + 0.5·0.4 = 0.5, κ = 0.4
    a = [1] * 25 + [2] * 25
    b = [1] * 20 + [2] * 5 + [1] * 10 + [2] * 15
    assert cohen_kappas(a, b, SCALE)["unweighted"] == pytest.approx(0.4)


def test_cohen_kappa_undefined_and_refused():
    assert cohen_kappas([3, 3, 3], [3, 3, 3], SCALE)["unweighted"] is None  # one category: 0 / 0
    assert cohen_kappas([], [], SCALE) == {"items": 0, "unweighted": None, "quadratic": None}
    with pytest.raises(ValueError, match=r"same length; got shapes \(2,\) and \(3,\)"):
        cohen_kappas([1, 2], [1, 2, 3], SCALE)


def test_fleiss_kappa_matches_the_worked_example():
    assert fleiss_kappa(FLEISS_EXAMPLE) == pytest.approx(0.20993, abs=5e-5)


def test_fleiss_kappa_perfect_and_two_raters():
    ratings = np.array([[1, 1, 1], [2, 2, 2], [5, 5, 5]])
    assert fleiss_kappa(category_counts(ratings, SCALE)) == pytest.approx(1.0)
    assert fleiss_kappa(category_counts(np.array([[3, 3], [3, 3]]), SCALE)) is None
    # Two raters: Fleiss' κ is Scott's π; on a table with equal marginals it equals Cohen's κ.
    a, b = [1, 2, 1, 2, 1, 2], [1, 2, 2, 1, 1, 2]
    table = category_counts(np.stack([a, b], axis=1), SCALE)
    assert fleiss_kappa(table) == pytest.approx(cohen_kappa_score(a, b))


def test_fleiss_refuses_uneven_rows_and_unknown_categories():
    with pytest.raises(ValueError, match="same number"):
        fleiss_kappa(np.array([[2, 0], [1, 2]]))
    with pytest.raises(ValueError, match=r"ratings \[7\] are not among"):
        category_counts(np.array([[1, 7]]), SCALE)
