"""Evaluation metrics: classification reports and plots, and explanation localisation metrics.

This package uses only NumPy, SciPy, scikit-learn and Matplotlib (Agg canvas); it never imports
TensorFlow.
"""

from tfxmed.metrics.classification import classification_report, plot_confusion_matrix, plot_roc
from tfxmed.metrics.localization import (
    BINARIZE_METHODS,
    binarize,
    energy_pointing_game,
    iou,
    localization_summary,
    pointing_game,
)

__all__ = [
    "classification_report",
    "plot_roc",
    "plot_confusion_matrix",
    "BINARIZE_METHODS",
    "binarize",
    "iou",
    "pointing_game",
    "energy_pointing_game",
    "localization_summary",
]
