"""Classification metrics and plots for single-label and multi-label classifiers.

Everything scikit-learn provides (AUC, precision, recall, F1, confusion matrices, ROC curves) is
computed with scikit-learn. Multi-label labels may hold −1 for "not scored" (a label whose record weight
is 0, e.g. CheXpert U-Ignore's uncertain findings, `ignored_as_minus_one`): each label's metrics use its
scored examples only. Reports contain only plain Python values so they can be written with
``json.dumps(report, allow_nan=False)``: undefined values are ``None``, never NaN.

Plots use Matplotlib's object-oriented API with the Agg canvas (no pyplot, no global backend
state) and are written atomically.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn import metrics as sklearn_metrics

from tfxmed.storage import is_remote, make_dirs, write_figure_atomic

__all__ = [
    "report_auc", "classification_report", "plot_roc", "plot_confusion_matrix", "ignored_as_minus_one"]

IGNORED = -1  # a multi-label entry that is not scored (its label weight is 0)


def ignored_as_minus_one(labels: np.ndarray, label_weights: np.ndarray | None) -> np.ndarray:
    """Multi-hot `labels` [N, K] as int, with −1 where `label_weights` is 0 (e.g. U-Ignore), for the metrics."""
    labels = np.asarray(labels).astype(np.int64)
    if label_weights is None:
        return labels
    return np.where(np.asarray(label_weights) > 0, labels, IGNORED)

DEFAULT_THRESHOLD = 0.5


def _optional_float(value: Any) -> float | None:
    """Return ``value`` as a Python float, or ``None`` when it is missing or not finite."""
    return float(value) if value is not None and math.isfinite(float(value)) else None


def _validate_inputs(
    labels: np.ndarray,
    probabilities: np.ndarray,
    class_names: Sequence[str],
    multi_label: bool,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Check shapes and values; return ``(labels, probabilities, class_names)`` as arrays/list."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    labels = np.asarray(labels)
    class_names = [str(name) for name in class_names]
    if probabilities.ndim != 2:
        raise ValueError(
            f"probabilities must have shape [num_examples, num_classes]; got shape {probabilities.shape}"
        )
    num_examples, num_classes = probabilities.shape
    if num_examples == 0:
        raise ValueError(f"probabilities must contain at least one example; got {probabilities.shape}")
    if not multi_label and num_classes < 2:
        raise ValueError(
            "single-label probabilities need at least 2 classes (shape [num_examples, K>=2]); "
            f"got shape {probabilities.shape}"
        )
    if not np.all(np.isfinite(probabilities)):
        raise ValueError("probabilities contain NaN or infinite values")
    if len(class_names) != num_classes:
        raise ValueError(
            f"class_names has {len(class_names)} entries but probabilities has {num_classes} "
            f"classes (shape {probabilities.shape})"
        )
    if len(set(class_names)) != len(class_names):
        raise ValueError(f"class_names must be unique; got {class_names}")
    if multi_label:
        if labels.shape != probabilities.shape:
            raise ValueError(
                f"multi-label labels must be multi-hot with shape [num_examples, num_classes] = "
                f"{list(probabilities.shape)}; got shape {labels.shape}"
            )
        if not np.all(np.isin(labels, (0, 1, IGNORED))):
            raise ValueError("multi-label labels must contain only 0 and 1 (and -1 for a label not scored)")
        labels = labels.astype(np.int64)
    else:
        if labels.shape != (num_examples,):
            raise ValueError(
                f"single-label labels must be class indices with shape [num_examples] = "
                f"[{num_examples}]; got shape {labels.shape}"
            )
        if not np.all(np.equal(np.mod(labels, 1), 0)):
            raise ValueError("single-label labels must be integer class indices")
        labels = labels.astype(np.int64)
        if labels.min() < 0 or labels.max() >= num_classes:
            raise ValueError(
                f"single-label labels must lie in [0, {num_classes - 1}]; got values in "
                f"[{labels.min()}, {labels.max()}]"
            )
    return labels, probabilities, class_names


def _one_versus_rest_targets(labels: np.ndarray, num_classes: int, multi_label: bool) -> np.ndarray:
    """Return [N, K] binary targets (multi-hot labels, or one-hot encoded class indices)."""
    if multi_label:
        return labels
    return (labels[:, None] == np.arange(num_classes)[None, :]).astype(np.int64)


def _per_class_auc(targets: np.ndarray, probabilities: np.ndarray) -> list[float | None]:
    """One-vs-rest ROC AUC per class; ``None`` where a class has only one target value."""
    values: list[float | None] = []
    for class_index in range(targets.shape[1]):
        scored = targets[:, class_index] != IGNORED
        column = targets[scored, class_index]
        defined = len(column) > 0 and column.min() != column.max()
        values.append(_optional_float(sklearn_metrics.roc_auc_score(
            column, probabilities[scored, class_index])) if defined else None)
    return values


def _auc(labels: np.ndarray, probabilities: np.ndarray, multi_label: bool) -> tuple[float | None, list]:
    """(the report's AUC, per-class AUCs): binary → class 1's; otherwise the mean of the defined ones."""
    num_classes = probabilities.shape[1]
    auc_per_class = _per_class_auc(_one_versus_rest_targets(labels, num_classes, multi_label), probabilities)
    defined = [value for value in auc_per_class if value is not None]
    if not multi_label and num_classes == 2:
        return auc_per_class[1], auc_per_class
    return (float(np.mean(defined)) if defined else None), auc_per_class


def report_auc(labels: np.ndarray, probabilities: np.ndarray, multi_label: bool = False) -> float:
    """The AUC `classification_report` reports, as one function (NaN where undefined), e.g. to bootstrap."""
    auc = _auc(np.asarray(labels), np.asarray(probabilities), multi_label)[0]
    return float("nan") if auc is None else float(auc)


def _predict(probabilities: np.ndarray, multi_label: bool, threshold: float | None) -> np.ndarray:
    """Predicted class indices [N] (single-label) or multi-hot predictions [N, K] (multi-label)."""
    if multi_label:
        return (probabilities >= threshold).astype(np.int64)
    if probabilities.shape[1] == 2:
        return (probabilities[:, 1] >= threshold).astype(np.int64)
    return np.argmax(probabilities, axis=1).astype(np.int64)


def classification_report(
    labels: np.ndarray,
    probabilities: np.ndarray,
    class_names: list[str],
    multi_label: bool = False,
    threshold: float | None = None,
) -> dict:
    """Compute a JSON-serialisable classification report.

    Args:
        labels: single-label: integer class indices of shape [N]; multi-label: multi-hot [N, K].
        probabilities: predicted probabilities of shape [N, K] (K >= 2 for single-label).
        class_names: K class names, in column order.
        multi_label: whether each example may carry several labels (independent sigmoids).
        threshold: decision threshold for binary (K == 2) single-label problems, applied to the
            probability of class 1, and for every class of multi-label problems. Defaults to 0.5.
            Multi-class single-label predictions use argmax and report ``threshold`` as ``None``.

    Returns:
        A dict of plain Python values: ``accuracy`` (multi-label: mean per-label accuracy, plus
        ``subset_accuracy``), ``auc`` (binary: AUC of class 1; otherwise the macro mean of the
        one-vs-rest AUCs of the classes where it is defined), ``auc_per_class``,
        ``precision_macro``, ``recall_macro``, ``f1_macro``, per-class one-vs-rest ``sensitivity``
        and ``specificity``, ``confusion_matrix`` (single-label: K x K, rows are true classes;
        multi-label: ``{name: [[tn, fp], [fn, tp]]}``), ``threshold``, ``num_examples``,
        ``class_names`` and ``multi_label``. Undefined values are ``None``.

    Raises:
        ValueError: if shapes or values of the arguments do not match.
    """
    labels, probabilities, class_names = _validate_inputs(labels, probabilities, class_names, multi_label)
    num_examples, num_classes = probabilities.shape
    uses_threshold = multi_label or num_classes == 2
    if uses_threshold:
        threshold = DEFAULT_THRESHOLD if threshold is None else float(threshold)
    else:
        threshold = None
    predictions = _predict(probabilities, multi_label, threshold)
    class_indices = list(range(num_classes))

    auc, auc_per_class = _auc(labels, probabilities, multi_label)

    report: dict[str, Any] = {}
    if multi_label:
        scored = labels != IGNORED
        correct = (labels == predictions) | ~scored
        report["accuracy"] = _optional_float(np.mean([np.mean(correct[scored[:, k], k]) for k in class_indices
                                                      if scored[:, k].any()]) if scored.any() else None)
        report["subset_accuracy"] = _optional_float(np.mean(correct.all(axis=1)))
        per_class_matrices = np.array([
            sklearn_metrics.confusion_matrix(labels[scored[:, k], k], predictions[scored[:, k], k], labels=[0, 1])
            for k in class_indices])
    else:
        report["accuracy"] = _optional_float(sklearn_metrics.accuracy_score(labels, predictions))
        per_class_matrices = sklearn_metrics.multilabel_confusion_matrix(
            labels, predictions, labels=class_indices)
    report["auc"] = _optional_float(auc)
    report["auc_per_class"] = dict(zip(class_names, auc_per_class))
    if multi_label:  # macro means of the per-label figures over each label's scored examples
        (_, false_positive), (false_negative, true_positive) = per_class_matrices.transpose(1, 2, 0)
        precision = np.divide(true_positive, true_positive + false_positive,
                              out=np.zeros(num_classes), where=true_positive + false_positive > 0)
        recall = np.divide(true_positive, true_positive + false_negative,
                           out=np.zeros(num_classes), where=true_positive + false_negative > 0)
        f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(num_classes),
                       where=precision + recall > 0)
        for key, values in (("precision_macro", precision), ("recall_macro", recall), ("f1_macro", f1)):
            report[key] = _optional_float(values.mean())
    else:
        for key, function in (("precision_macro", sklearn_metrics.precision_score),
                              ("recall_macro", sklearn_metrics.recall_score),
                              ("f1_macro", sklearn_metrics.f1_score)):
            report[key] = _optional_float(function(labels, predictions, average="macro", zero_division=0,
                                                   labels=class_indices))

    sensitivity: dict[str, float | None] = {}
    specificity: dict[str, float | None] = {}
    for name, matrix in zip(class_names, per_class_matrices):
        (true_negative, false_positive), (false_negative, true_positive) = matrix.tolist()
        positives = true_positive + false_negative
        negatives = true_negative + false_positive
        sensitivity[name] = true_positive / positives if positives else None
        specificity[name] = true_negative / negatives if negatives else None
    report["sensitivity"] = sensitivity
    report["specificity"] = specificity

    if multi_label:
        report["confusion_matrix"] = {
            name: matrix.astype(int).tolist() for name, matrix in zip(class_names, per_class_matrices)}
    else:
        matrix = sklearn_metrics.confusion_matrix(labels, predictions, labels=class_indices)
        report["confusion_matrix"] = matrix.astype(int).tolist()
    report["threshold"] = threshold
    report["num_examples"] = int(num_examples)
    report["class_names"] = list(class_names)
    report["multi_label"] = bool(multi_label)
    return report


def _save_figure_atomically(figure: Figure, path: str | os.PathLike) -> None:
    """Render ``figure`` to PNG in memory, then write it atomically to ``path`` (any filesystem)."""
    path = os.fspath(path)
    make_dirs(os.path.dirname(path if is_remote(path) else os.path.abspath(path)))
    FigureCanvasAgg(figure)
    write_figure_atomic(figure, path, dpi=100, bbox_inches="tight")


def plot_roc(
    labels: np.ndarray,
    probabilities: np.ndarray,
    class_names: list[str],
    multi_label: bool,
    path: str | os.PathLike,
) -> None:
    """Write ROC curve(s) as a PNG file.

    Binary single-label problems get one curve for the positive class (class 1); multi-class and
    multi-label problems get one one-vs-rest curve per class whose AUC is defined. Each legend
    entry shows the AUC. Classes with only one target value are listed as undefined.
    """
    labels, probabilities, class_names = _validate_inputs(labels, probabilities, class_names, multi_label)
    num_classes = probabilities.shape[1]
    targets = _one_versus_rest_targets(labels, num_classes, multi_label)
    binary = not multi_label and num_classes == 2
    plotted_classes = [1] if binary else list(range(num_classes))

    figure = Figure(figsize=(6, 6))
    axes = figure.add_subplot(1, 1, 1)
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="chance")
    for class_index in plotted_classes:
        scored = targets[:, class_index] != IGNORED
        column, scores = targets[scored, class_index], probabilities[scored, class_index]
        name = class_names[class_index]
        if not len(column) or column.min() == column.max():
            axes.plot([], [], linestyle="none", label=f"{name} (AUC undefined)")
            continue
        false_positive_rate, true_positive_rate, _ = sklearn_metrics.roc_curve(column, scores)
        auc = sklearn_metrics.roc_auc_score(column, scores)
        axes.plot(false_positive_rate, true_positive_rate, linewidth=2,
                  label=f"{name} (AUC = {auc:.3f})")
    axes.set_xlim(0.0, 1.0)
    axes.set_ylim(0.0, 1.02)
    axes.set_xlabel("False positive rate (1 - specificity)")
    axes.set_ylabel("True positive rate (sensitivity)")
    axes.set_title("ROC curve" if binary else "ROC curves (one-vs-rest)")
    axes.legend(loc="lower right", fontsize="small")
    _save_figure_atomically(figure, path)


def plot_confusion_matrix(
    confusion_matrix: list | np.ndarray,
    class_names: list[str],
    path: str | os.PathLike,
) -> None:
    """Write a single-label confusion matrix (rows = true, columns = predicted) as an annotated
    heat map PNG file."""
    matrix = np.asarray(confusion_matrix)
    class_names = [str(name) for name in class_names]
    num_classes = len(class_names)
    if matrix.shape != (num_classes, num_classes):
        raise ValueError(
            f"confusion_matrix must have shape [num_classes, num_classes] = "
            f"[{num_classes}, {num_classes}] to match class_names; got shape {matrix.shape}"
        )
    size = max(4.0, 0.8 * num_classes + 2.0)
    figure = Figure(figsize=(size, size))
    axes = figure.add_subplot(1, 1, 1)
    image = axes.imshow(matrix, interpolation="nearest", cmap="Blues")
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04)
    axes.set_xticks(range(num_classes), labels=class_names, rotation=45, ha="right")
    axes.set_yticks(range(num_classes), labels=class_names)
    axes.set_xlabel("Predicted class")
    axes.set_ylabel("True class")
    axes.set_title("Confusion matrix")
    maximum = float(matrix.max()) if matrix.size else 0.0
    for row in range(num_classes):
        for column in range(num_classes):
            value = matrix[row, column]
            text = f"{int(value)}" if float(value).is_integer() else f"{float(value):.2f}"
            colour = "white" if maximum > 0 and value > maximum / 2 else "black"
            axes.text(column, row, text, ha="center", va="center", color=colour)
    _save_figure_atomically(figure, path)
