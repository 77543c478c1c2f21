"""Precision-recall curves and calibration (reliability diagram, Brier score, ECE), one-vs-rest.

Curves come from scikit-learn (`precision_recall_curve`, `average_precision_score`,
`calibration_curve`, `brier_score_loss`); the expected calibration error is the bin-weighted mean
|observed frequency − mean confidence| over equal-width bins (Guo et al., 2017, per class).
"""

from __future__ import annotations

import os

import numpy as np
from matplotlib.figure import Figure
from sklearn import calibration as sklearn_calibration
from sklearn import metrics as sklearn_metrics

from tfxmed.metrics.classification import (
    _one_versus_rest_targets,
    _optional_float,
    _save_figure_atomically,
    _validate_inputs,
)

__all__ = ["calibration_summary", "expected_calibration_error", "plot_precision_recall", "plot_calibration"]


def _columns(labels, probabilities, class_names, multi_label):
    """(class index, name, 0/1 targets, scores) per curve: class 1 only for binary single-label; a
    multi-label column keeps its scored examples only (labels −1 are not scored)."""
    labels, probabilities, class_names = _validate_inputs(labels, probabilities, class_names, multi_label)
    targets = _one_versus_rest_targets(labels, probabilities.shape[1], multi_label)
    indices = [1] if not multi_label and probabilities.shape[1] == 2 else range(probabilities.shape[1])
    scored = targets >= 0
    return [(i, class_names[i], targets[scored[:, i], i], probabilities[scored[:, i], i]) for i in indices]


def expected_calibration_error(targets: np.ndarray, scores: np.ndarray, bins: int = 10) -> float:
    """Σ_b (n_b / N) · |mean(targets in b) − mean(scores in b)| over equal-width score bins."""
    targets, scores = np.asarray(targets, float), np.asarray(scores, float)
    which = np.minimum((scores * bins).astype(int), bins - 1)
    error = 0.0
    for b in np.unique(which):
        inside = which == b
        error += inside.mean() * abs(targets[inside].mean() - scores[inside].mean())
    return float(error)


def calibration_summary(labels, probabilities, class_names, multi_label: bool = False, bins: int = 10) -> dict:
    """Per class: Brier score, ECE and average precision (PR AUC); JSON-ready (None when undefined)."""
    summary = {}
    for _, name, targets, scores in _columns(labels, probabilities, class_names, multi_label):
        if not len(targets):  # a label no example is scored on
            summary[name] = {"brier": None, "ece": None, "average_precision": None}
            continue
        defined = targets.min() != targets.max()
        summary[name] = {
            "brier": _optional_float(sklearn_metrics.brier_score_loss(targets, scores)),
            "ece": expected_calibration_error(targets, scores, bins),
            "average_precision": (
                _optional_float(sklearn_metrics.average_precision_score(targets, scores)) if defined else None
            ),
        }
    return summary


def plot_precision_recall(labels, probabilities, class_names, multi_label: bool, path: str | os.PathLike) -> None:
    """PR curve(s) with average precision in the legend and each class's prevalence as chance."""
    figure = Figure(figsize=(6, 6))
    axes = figure.add_subplot(1, 1, 1)
    for _, name, targets, scores in _columns(labels, probabilities, class_names, multi_label):
        if not len(targets) or targets.min() == targets.max():
            axes.plot([], [], linestyle="none", label=f"{name} (undefined)")
            continue
        precision, recall, _ = sklearn_metrics.precision_recall_curve(targets, scores)
        average = sklearn_metrics.average_precision_score(targets, scores)
        line, = axes.plot(recall, precision, linewidth=2, label=f"{name} (AP = {average:.3f})")
        axes.axhline(targets.mean(), linestyle=":", linewidth=1, color=line.get_color())
    axes.set_xlim(0.0, 1.0)
    axes.set_ylim(0.0, 1.02)
    axes.set_xlabel("Recall (sensitivity)")
    axes.set_ylabel("Precision (PPV)")
    axes.set_title("Precision-recall (dotted: prevalence)")
    axes.legend(loc="lower left", fontsize="small")
    _save_figure_atomically(figure, path)


def plot_calibration(
    labels, probabilities, class_names, multi_label: bool, path: str | os.PathLike, bins: int = 10
) -> None:
    """Reliability diagram: observed frequency against mean predicted probability per bin."""
    figure = Figure(figsize=(6, 6))
    axes = figure.add_subplot(1, 1, 1)
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="perfectly calibrated")
    for _, name, targets, scores in _columns(labels, probabilities, class_names, multi_label):
        if not len(targets):
            continue
        observed, predicted = sklearn_calibration.calibration_curve(targets, scores, n_bins=bins, strategy="uniform")
        ece = expected_calibration_error(targets, scores, bins)
        axes.plot(predicted, observed, marker="o", linewidth=2, label=f"{name} (ECE = {ece:.3f})")
    axes.set_xlim(0.0, 1.0)
    axes.set_ylim(0.0, 1.0)
    axes.set_xlabel("Mean predicted probability")
    axes.set_ylabel("Observed frequency")
    axes.set_title("Calibration")
    axes.legend(loc="upper left", fontsize="small")
    _save_figure_atomically(figure, path)
