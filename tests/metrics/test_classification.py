"""Tests for tfxmed.metrics.classification against hand-computed values."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from tfxmed.metrics.classification import (
    classification_report,
    ignored_as_minus_one,
    plot_confusion_matrix,
    plot_roc,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# Binary fixture: 3 negatives, 3 positives.
BINARY_LABELS = np.array([0, 0, 0, 1, 1, 1])
BINARY_POSITIVE = np.array([0.1, 0.4, 0.35, 0.8, 0.3, 0.9])
BINARY_PROBABILITIES = np.stack([1.0 - BINARY_POSITIVE, BINARY_POSITIVE], axis=1)

# Three-class fixture; the predicted (argmax) classes are [0, 1, 1, 1, 2, 0, 2].
MULTICLASS_LABELS = np.array([0, 0, 1, 1, 2, 2, 2])
MULTICLASS_PREDICTED = [0, 1, 1, 1, 2, 0, 2]
MULTICLASS_PROBABILITIES = np.full((7, 3), 0.2)
MULTICLASS_PROBABILITIES[np.arange(7), MULTICLASS_PREDICTED] = 0.6

# Multi-label fixture; class "mass" is never present.
MULTILABEL_NAMES = ["effusion", "nodule", "mass"]
MULTILABEL_LABELS = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 0]])
MULTILABEL_PROBABILITIES = np.array([
    [0.9, 0.2, 0.1],
    [0.4, 0.7, 0.6],
    [0.6, 0.15, 0.2],
    [0.2, 0.1, 0.05],
])


def auc_by_pair_counting(targets: np.ndarray, scores: np.ndarray) -> float:
    """AUC as the fraction of (positive, negative) pairs ranked correctly (ties count 1/2)."""
    positives = scores[targets == 1]
    negatives = scores[targets == 0]
    concordant = 0.0
    for positive in positives:
        for negative in negatives:
            concordant += 1.0 if positive > negative else 0.5 if positive == negative else 0.0
    return concordant / (len(positives) * len(negatives))


def test_binary_report_matches_hand_computation():
    report = classification_report(BINARY_LABELS, BINARY_PROBABILITIES, ["normal", "disease"])
    # Pairs: 0.8 beats 3 negatives, 0.3 beats only 0.1, 0.9 beats 3 -> 7 of 9 pairs.
    assert auc_by_pair_counting(BINARY_LABELS, BINARY_POSITIVE) == pytest.approx(7 / 9)
    assert report["auc"] == pytest.approx(7 / 9)
    assert report["auc_per_class"]["disease"] == pytest.approx(7 / 9)
    # Predictions at 0.5: [0, 0, 0, 1, 0, 1] -> TN=3, FP=0, FN=1, TP=2.
    assert report["confusion_matrix"] == [[3, 0], [1, 2]]
    assert report["accuracy"] == pytest.approx(5 / 6)
    assert report["sensitivity"] == pytest.approx({"normal": 1.0, "disease": 2 / 3})
    assert report["specificity"] == pytest.approx({"normal": 2 / 3, "disease": 1.0})
    # Precision: normal 3/4, disease 2/2; recall: normal 1, disease 2/3.
    assert report["precision_macro"] == pytest.approx((0.75 + 1.0) / 2)
    assert report["recall_macro"] == pytest.approx((1.0 + 2 / 3) / 2)
    f1_normal = 2 * 0.75 * 1.0 / 1.75
    f1_disease = 2 * 1.0 * (2 / 3) / (5 / 3)
    assert report["f1_macro"] == pytest.approx((f1_normal + f1_disease) / 2)
    assert report["threshold"] == 0.5
    assert report["num_examples"] == 6
    assert report["class_names"] == ["normal", "disease"]


def test_binary_threshold_changes_predictions():
    report = classification_report(BINARY_LABELS, BINARY_PROBABILITIES, ["normal", "disease"],
                                   threshold=0.35)
    # Predictions at >= 0.35: [0, 1, 1, 1, 0, 1] -> TN=1, FP=2, FN=1, TP=2.
    assert report["confusion_matrix"] == [[1, 2], [1, 2]]
    assert report["sensitivity"]["disease"] == pytest.approx(2 / 3)
    assert report["specificity"]["disease"] == pytest.approx(1 / 3)
    assert report["threshold"] == 0.35
    assert report["auc"] == pytest.approx(7 / 9)  # AUC does not depend on the threshold


def test_multiclass_report_matches_hand_computation():
    names = ["a", "b", "c"]
    report = classification_report(MULTICLASS_LABELS, MULTICLASS_PROBABILITIES, names)
    assert report["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 2]]
    assert report["accuracy"] == pytest.approx(5 / 7)
    assert report["sensitivity"] == pytest.approx({"a": 1 / 2, "b": 1.0, "c": 2 / 3})
    assert report["specificity"] == pytest.approx({"a": 4 / 5, "b": 4 / 5, "c": 1.0})
    # Precision: a 1/2, b 2/3, c 2/2.
    assert report["precision_macro"] == pytest.approx((0.5 + 2 / 3 + 1.0) / 3)
    assert report["recall_macro"] == pytest.approx((0.5 + 1.0 + 2 / 3) / 3)
    per_class = [auc_by_pair_counting((MULTICLASS_LABELS == k).astype(int), MULTICLASS_PROBABILITIES[:, k])
                 for k in range(3)]
    # Class c: 0.6, 0.2, 0.6 against four 0.2s -> 8 wins + 4 ties = 10 of 12.
    assert per_class[2] == pytest.approx(10 / 12)
    assert [report["auc_per_class"][name] for name in names] == pytest.approx(per_class)
    assert report["auc"] == pytest.approx(np.mean(per_class))
    assert report["auc"] == pytest.approx(
        roc_auc_score(MULTICLASS_LABELS, MULTICLASS_PROBABILITIES, multi_class="ovr", average="macro"))
    assert report["threshold"] is None  # argmax, no threshold


def test_multiclass_with_absent_class_gives_none():
    labels = np.array([0, 1, 0, 1])
    probabilities = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4], [0.5, 0.4, 0.1]])
    report = classification_report(labels, probabilities, ["a", "b", "c"])
    assert report["auc_per_class"]["c"] is None
    assert report["sensitivity"]["c"] is None
    assert report["specificity"]["c"] == pytest.approx(3 / 4)  # predicted "c" once
    assert report["auc"] == pytest.approx(np.mean(
        [report["auc_per_class"]["a"], report["auc_per_class"]["b"]]))
    json.dumps(report, allow_nan=False)


def test_multilabel_report_matches_hand_computation():
    report = classification_report(MULTILABEL_LABELS, MULTILABEL_PROBABILITIES, MULTILABEL_NAMES,
                                   multi_label=True)
    # Predictions at 0.5: [[1,0,0], [0,1,1], [1,0,0], [0,0,0]].
    assert report["confusion_matrix"] == {
        "effusion": [[2, 0], [0, 2]],
        "nodule": [[2, 0], [1, 1]],
        "mass": [[3, 1], [0, 0]],
    }
    assert report["accuracy"] == pytest.approx(10 / 12)
    assert report["subset_accuracy"] == pytest.approx(2 / 4)
    assert report["auc_per_class"]["effusion"] == pytest.approx(1.0)
    assert report["auc_per_class"]["nodule"] == pytest.approx(3 / 4)
    assert report["auc_per_class"]["mass"] is None
    assert report["auc"] == pytest.approx((1.0 + 0.75) / 2)
    assert report["sensitivity"] == {"effusion": 1.0, "nodule": 0.5, "mass": None}
    assert report["specificity"] == {"effusion": 1.0, "nodule": 1.0, "mass": 0.75}
    assert report["precision_macro"] == pytest.approx((1.0 + 1.0 + 0.0) / 3)
    assert report["recall_macro"] == pytest.approx((1.0 + 0.5 + 0.0) / 3)
    assert report["threshold"] == 0.5
    assert report["multi_label"] is True


def test_multilabel_entries_not_scored_are_left_out_of_every_label_metric(tmp_path):
    """U-Ignore: an uncertain finding (label weight 0) is neither a positive nor a negative."""
    weights = np.ones_like(MULTILABEL_LABELS, dtype=float)
    weights[1, 0] = 0.0  # effusion of example 1 (p = 0.4, stored as 0) is not scored
    weights[2, 1] = 0.0  # nodule of example 2 (p = 0.15, stored as 1) is not scored
    labels = ignored_as_minus_one(MULTILABEL_LABELS, weights)
    assert labels[1, 0] == labels[2, 1] == -1 and (labels >= 0).sum() == 10
    report = classification_report(labels, MULTILABEL_PROBABILITIES, MULTILABEL_NAMES, multi_label=True)
    # nodule on examples 0, 1, 3 only: the positive (0.7) outranks both negatives; scored as a label it was 3/4.
    assert report["auc_per_class"]["nodule"] == pytest.approx(1.0)
    assert report["confusion_matrix"]["effusion"] == [[1, 0], [0, 2]]
    assert report["confusion_matrix"]["nodule"] == [[2, 0], [0, 1]]
    assert report["sensitivity"]["nodule"] == 1.0 and report["specificity"]["effusion"] == 1.0
    # accuracy: the mean of each label's accuracy over its scored examples (3/3, 3/3, 3/4).
    assert report["accuracy"] == pytest.approx((1 + 1 + 0.75) / 3)
    assert report["subset_accuracy"] == pytest.approx(3 / 4)  # example 1 still predicts "mass" wrongly
    assert report["recall_macro"] == pytest.approx((1.0 + 1.0 + 0.0) / 3)
    plot_roc(labels, MULTILABEL_PROBABILITIES, MULTILABEL_NAMES, True, str(tmp_path / "roc.png"))
    assert_png(tmp_path / "roc.png")
    np.testing.assert_array_equal(ignored_as_minus_one(MULTILABEL_LABELS, None), MULTILABEL_LABELS)


def test_multilabel_macro_figures_match_scikit_learn_when_every_entry_is_scored():
    from sklearn.metrics import f1_score, precision_score

    rng = np.random.default_rng(0)
    labels = (rng.random((50, 4)) < 0.4).astype(int)
    probabilities = np.clip(labels * 0.3 + rng.random((50, 4)) * 0.7, 0, 1)
    report = classification_report(labels, probabilities, list("abcd"), multi_label=True)
    predictions = (probabilities >= 0.5).astype(int)
    assert report["precision_macro"] == pytest.approx(precision_score(labels, predictions, average="macro",
                                                                      zero_division=0))
    assert report["f1_macro"] == pytest.approx(f1_score(labels, predictions, average="macro", zero_division=0))
    assert report["accuracy"] == pytest.approx(np.mean(labels == predictions))


def test_report_is_strict_json_with_missing_class():
    labels = np.zeros(4, dtype=int)  # only class 0 present: AUC undefined
    probabilities = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.7, 0.3]])
    report = classification_report(labels, probabilities, ["normal", "disease"])
    assert report["auc"] is None
    assert report["sensitivity"]["disease"] is None
    text = json.dumps(report, allow_nan=False)
    assert json.loads(text)["accuracy"] == pytest.approx(3 / 4)


@pytest.mark.parametrize("arguments, multi_label, message", [
    ((BINARY_LABELS, BINARY_POSITIVE, ["a", "b"]), False, "probabilities must have shape"),
    ((BINARY_LABELS[:5], BINARY_PROBABILITIES, ["a", "b"]), False,
     r"labels .*shape \[num_examples\] = \[6\]"),
    ((BINARY_LABELS, BINARY_PROBABILITIES, ["a", "b", "c"]), False, "class_names has 3 entries"),
    ((np.array([0, 0, 0, 1, 1, 2]), BINARY_PROBABILITIES, ["a", "b"]), False, r"must lie in \[0, 1\]"),
    ((BINARY_LABELS, MULTILABEL_PROBABILITIES, MULTILABEL_NAMES), True, r"multi-hot with shape"),
])
def test_invalid_inputs_raise_clear_errors(arguments, multi_label, message):
    with pytest.raises(ValueError, match=message):
        classification_report(*arguments, multi_label=multi_label)


def assert_png(path):
    with open(path, "rb") as handle:
        content = handle.read()
    assert content.startswith(PNG_MAGIC)
    assert len(content) > 1000


@pytest.mark.parametrize("labels, probabilities, names, multi_label", [
    (BINARY_LABELS, BINARY_PROBABILITIES, ["normal", "disease"], False),
    (MULTICLASS_LABELS, MULTICLASS_PROBABILITIES, ["a", "b", "c"], False),
    (MULTILABEL_LABELS, MULTILABEL_PROBABILITIES, MULTILABEL_NAMES, True),
])
def test_plot_roc_writes_png_atomically(tmp_path, labels, probabilities, names, multi_label):
    path = tmp_path / "plots" / "roc.png"
    plot_roc(labels, probabilities, names, multi_label, path)
    assert_png(path)
    assert os.listdir(path.parent) == ["roc.png"]  # no temporary file left behind


def test_plot_confusion_matrix_writes_png(tmp_path):
    report = classification_report(MULTICLASS_LABELS, MULTICLASS_PROBABILITIES, ["a", "b", "c"])
    path = tmp_path / "confusion.png"
    plot_confusion_matrix(report["confusion_matrix"], ["a", "b", "c"], str(path))
    assert_png(path)
    assert os.listdir(tmp_path) == ["confusion.png"]


def test_plot_confusion_matrix_rejects_wrong_shape(tmp_path):
    with pytest.raises(ValueError, match=r"\[num_classes, num_classes\] = \[3, 3\]"):
        plot_confusion_matrix([[1, 2], [3, 4]], ["a", "b", "c"], tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()
