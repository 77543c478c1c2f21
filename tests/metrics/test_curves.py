import numpy as np
import pytest

from tfxmed.metrics.curves import (
    calibration_summary,
    expected_calibration_error,
    plot_calibration,
    plot_precision_recall,
)


def test_expected_calibration_error_by_hand():
    scores = np.array([0.05, 0.15, 0.12, 0.85, 0.95, 0.9])
    targets = np.array([0, 1, 0, 1, 1, 0])
    # bins: [0, .1): {0.05 → 0}; [.1, .2): {0.15 → 1, 0.12 → 0}; [.8, .9): {0.85 → 1}; [.9, 1]: {0.95 → 1, 0.9 → 0}
    expected = (1 / 6) * 0.05 + (2 / 6) * abs(0.5 - 0.135) + (1 / 6) * 0.15 + (2 / 6) * abs(0.5 - 0.925)
    assert expected_calibration_error(targets, scores) == pytest.approx(expected)
    assert expected_calibration_error(np.array([1, 0]), np.array([1.0, 0.0])) == 0.0


def test_calibration_summary_binary_and_multilabel(tmp_path):
    probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.7, 0.3]])
    labels = np.array([0, 1, 0, 1])
    summary = calibration_summary(labels, probabilities, ["normal", "lesion"])
    assert list(summary) == ["lesion"]  # binary: the positive class only
    assert summary["lesion"]["brier"] == pytest.approx(np.mean((probabilities[:, 1] - labels) ** 2))
    # Ranking 0.8 (pos), 0.6 (neg), 0.3 (pos), 0.1 (neg): AP = (1/1 + 2/3) / 2
    assert summary["lesion"]["average_precision"] == pytest.approx((1 + 2 / 3) / 2)
    multi = calibration_summary(
        np.array([[1, 0], [1, 0]]), np.array([[0.9, 0.2], [0.6, 0.1]]), ["a", "b"], multi_label=True)
    assert multi["b"]["average_precision"] is None and multi["a"]["ece"] == pytest.approx(0.25)
    for plot in (plot_precision_recall, plot_calibration):
        path = tmp_path / f"{plot.__name__}.png"
        plot(labels, probabilities, ["normal", "lesion"], False, path)
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
