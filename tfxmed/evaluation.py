"""The evaluation library behind `python -m tfxmed.evaluate`: diagnostic + Grad-CAM localisation metrics."""

from __future__ import annotations

import json
import os
import resource
import time

import keras
import numpy as np
import tensorflow as tf

from tfxmed.config import load_config
from tfxmed.data import pipeline
from tfxmed.explain.grad_cam import GradCam
from tfxmed.explain.overlay import save_overlay_grid
from tfxmed.metrics.classification import report_auc
from tfxmed.metrics import classification_report, localization_summary, plot_confusion_matrix, plot_roc
from tfxmed.metrics.faithfulness import average_drop_increase, deletion_insertion
from tfxmed.metrics.localization import iou, tune_binarization
from tfxmed.metrics.statistics import bootstrap_ci, youden_threshold
from tfxmed.models import default_explain_layer
from tfxmed.models import layers as _registered_layers  # noqa: F401  (registers custom layers)
from tfxmed.training.loop import BEST_CHECKPOINT
from tfrecords_tools.writer import load_manifest, write_json_atomic

__all__ = ["load_run", "collect_split", "evaluate_run", "efficiency", "lesion_examples"]


def load_run(run_dir: str):
    """(config, manifest, data_dir, best model) of a finished training run."""
    config_path = os.path.join(run_dir, "config.yaml")
    if not os.path.exists(config_path):
        raise FileNotFoundError(f"{config_path} not found: is '{run_dir}' a tfxmed run directory?")
    config = load_config(config_path)
    with open(os.path.join(run_dir, "run_info.json"), encoding="utf-8") as stream:
        data_dir = json.load(stream)["data_dir"]
    checkpoint = os.path.join(run_dir, BEST_CHECKPOINT)
    if not os.path.exists(checkpoint):
        raise FileNotFoundError(f"{checkpoint} not found: the run saved no best checkpoint yet")
    model = keras.saving.load_model(checkpoint)
    return config, load_manifest(data_dir), data_dir, model


def collect_split(data_dir: str, manifest: dict, config, split: str) -> dict:
    """All examples of a split (eval preprocessing) as NumPy arrays."""
    dataset = pipeline.build_dataset(data_dir, manifest, split, config.data, training=False, batch_size=128)
    parts: dict[str, list] = {"image": [], "mask": [], "has_mask": [], "label": []}
    for batch in dataset:
        for key in parts:
            parts[key].append(batch[key].numpy())
    return {key: np.concatenate(values) for key, values in parts.items()}


def efficiency(model: keras.Model, images: np.ndarray, explainer, forward, batch_size: int = 32) -> dict:
    """Parameters, compiled inference (`forward`) and Grad-CAM ms/image on one batch, and peak RSS."""
    batch = images[:batch_size]

    def per_image_ms(function) -> float:
        function()  # tracing is not timed
        started = time.perf_counter()
        function()
        return 1000.0 * (time.perf_counter() - started) / len(batch)

    return {
        "parameters": int(model.count_params()),
        "batch": len(batch),
        "inference_ms_per_image": per_image_ms(lambda: forward(batch).numpy()),
        "gradcam_ms_per_image": per_image_ms(lambda: explainer(batch)),
        # Whole-process high-water mark (Linux reports KiB): an upper bound, not the model's share.
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }


def lesion_examples(data: dict) -> np.ndarray:
    """Indices of the examples whose mask marks a lesion."""
    return np.flatnonzero(data["has_mask"].astype(bool) & (data["mask"].reshape(len(data["mask"]), -1).max(-1) > 0.5))


def _validation_tuned_iou(explainer, val: dict | None, config, maps, masks) -> dict:
    """IoU with the binarisation value that maximises IoU on the validation split (none for otsu/no val)."""
    method = config.explain.binarize
    if val is None or method == "otsu":
        return {}
    chosen = lesion_examples(val)
    if not len(chosen):
        return {}
    value, _ = tune_binarization(explainer(val["image"][chosen], val["label"][chosen]), val["mask"][chosen] > 0.5, method)
    tuned = iou(maps, masks, method, value)
    return {"binarize_value_tuned_on_val": value,
            "iou_mean_val_tuned": float(np.nanmean(tuned)) if np.isfinite(tuned).any() else None}


def evaluate_run(run_dir: str, split: str = "test") -> dict:
    """Writes `eval/metrics.json`, ROC and confusion PNGs, Grad-CAM maps and overlays; returns metrics."""
    config, manifest, data_dir, model = load_run(run_dir)
    out_dir = os.path.join(run_dir, "eval")
    os.makedirs(out_dir, exist_ok=True)
    data = collect_split(data_dir, manifest, config, split)
    probabilities = model.predict(data["image"], batch_size=128, verbose=0)
    multi_label, names = manifest["multi_label"], manifest["class_names"]
    labels = data["label"].astype(int) if multi_label else np.argmax(data["label"], axis=-1)
    report = classification_report(labels, probabilities, names, multi_label=multi_label)
    report["auc_ci"] = bootstrap_ci(lambda y, p: report_auc(y, p, multi_label), labels, probabilities)
    # The validation split, read once: it picks the decision threshold and the IoU binarisation value.
    val = collect_split(data_dir, manifest, config, "val") if split != "val" and "val" in manifest["splits"] else None
    validation_threshold = None
    if not multi_label and len(names) == 2 and val is not None:
        # Threshold chosen on validation (Youden's J), then applied once to this split.
        val_probabilities = model.predict(val["image"], batch_size=128, verbose=0)
        threshold = youden_threshold(np.argmax(val["label"], axis=-1), val_probabilities[:, 1])
        validation_threshold = {"method": "youden on val", "threshold": threshold,
                                "report": classification_report(labels, probabilities, names, threshold=threshold)}
    plot_roc(labels, probabilities, names, multi_label, os.path.join(out_dir, "roc.png"))
    if not multi_label:
        plot_confusion_matrix(report["confusion_matrix"], names, os.path.join(out_dir, "confusion_matrix.png"))

    # Localisation: explain the true class (every positive label) of images that have a lesion mask.
    layer = config.explain.layer or default_explain_layer(model)
    indices = lesion_examples(data)
    localization = {"num_evaluated": 0}
    explainer = GradCam(model, layer=layer, batch_size=64)
    forward = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    if len(indices):
        targets = data["label"][indices]
        maps = explainer(data["image"][indices], targets)
        masks = data["mask"][indices] > 0.5
        localization = localization_summary(
            maps, masks, config.explain.binarize, config.explain.binarize_value, config.explain.pointing_tolerance
        )
        # Faithfulness of the same maps: deletion / insertion AUC of the explained class's probability.
        scores = lambda x: forward(x).numpy()  # noqa: E731
        localization.update(_validation_tuned_iou(explainer, val, config, maps, masks))
        localization.update(deletion_insertion(scores, data["image"][indices], maps, targets))
        localization.update(average_drop_increase(scores, data["image"][indices], maps, targets))
        np.savez_compressed(os.path.join(out_dir, "gradcam_maps.npz"), maps=maps, masks=masks, indices=indices)
        shown = slice(0, config.explain.num_overlays)
        titles = [f"#{i} p={probabilities[i].max():.2f}" for i in indices[shown]]
        save_overlay_grid(
            os.path.join(out_dir, "gradcam_overlays.png"), data["image"][indices][shown], maps[shown],
            masks[shown], titles,
        )
    metrics = {
        "split": split,
        "classification": report,
        "classification_at_validation_threshold": validation_threshold,
        "localization": {"method": "gradcam", "layer": layer, "binarize": config.explain.binarize,
                         "binarize_value": config.explain.binarize_value, **localization},
        "efficiency": efficiency(model, data["image"], explainer, forward),
    }
    write_json_atomic(metrics, os.path.join(out_dir, "metrics.json"))
    return metrics
