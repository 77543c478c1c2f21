"""Evaluating and explaining a run's split: `python -m tfxmed evaluate` and `python -m tfxmed explain`.

`evaluate_run` scores the best checkpoint on a split (diagnostic metrics with CIs, the validation
threshold, localisation and faithfulness of the explanation maps) and writes RUN/eval/.
`explain_run` explains a split's first images (lesion images first) with several methods and saves
overlays, arrays and TensorBoard images into RUN/explanations/.
"""

from __future__ import annotations

import dataclasses
import os
import resource
import time

import keras
import numpy as np
import tensorflow as tf

from tfxmed import calibration as calibration_lib
from tfxmed.data import pipeline
from tfxmed.data.selection import lesion_examples, lesions_first
from tfxmed.default_explanation import Choice, choose_with_maps, explainer_for, save_choice
from tfxmed.explain import make_explainer
from tfxmed.explain.overlay import save_overlay_grid, save_volume_overlay_grid
from tfxmed.explain.saving import save_explanations
from tfxmed.metrics import classification_report, localization_summary, plot_confusion_matrix, plot_roc
from tfxmed.metrics.classification import ignored_as_minus_one, report_auc
from tfxmed.metrics.curves import calibration_summary
from tfxmed.metrics.diagnostics import map_specificity
from tfxmed.metrics.faithfulness import average_drop_increase, deletion_insertion
from tfxmed.metrics.localization import iou, tune_binarization
from tfxmed.metrics.road import road
from tfxmed.metrics.statistics import bootstrap_ci, youden_threshold
from tfxmed.runs import load_run
from tfxmed.storage import make_dirs, write_json_atomic, write_npz_atomic

__all__ = ["collect_split", "explain_run", "headline", "evaluate_run", "efficiency", "OVERLAYS_FILE", "MAPS_FILE"]

OVERLAYS_FILE = "explanation_overlays.png"  # in RUN/eval: the default explanation on the first lesion images
MAPS_FILE = "explanation_maps.npz"

ROAD_IMAGES = 64  # lesion images ROAD is measured on (the report uses as many)


def collect_split(data_dir: str, manifest: dict, config, split: str) -> dict:
    """All examples of a split (eval preprocessing) as NumPy arrays."""
    batch = 128
    if manifest.get("kind") == "volume":  # as many volumes per batch as data.volume_batch_megabytes allows
        from tfxmed.data.volume_pipeline import largest_batch

        batch = min(batch, largest_batch(config.data))
    dataset = pipeline.build_dataset(data_dir, manifest, split, config.data, training=False, batch_size=batch)
    parts: dict[str, list] = {key: [] for key in ("image", "mask", "has_mask", "label", "label_weight", "confounder",
                                                  "has_confounder")}
    for batch in dataset:
        for key in parts:
            parts[key].append(batch[key].numpy())
    return {key: np.concatenate(values) for key, values in parts.items()}


def metric_labels(data: dict, multi_label: bool) -> np.ndarray:
    """The labels metrics score (`collect_split`'s split): class indices [N], or multi-hot [N, K] with −1
    where the record's label weight is 0 (not scored, e.g. CheXpert U-Ignore)."""
    if multi_label:
        return ignored_as_minus_one(data["label"], data.get("label_weight"))
    return np.argmax(data["label"], axis=-1)


def efficiency(model: keras.Model, images: np.ndarray, explainer, forward, batch_size: int = 32) -> dict:
    """Parameters, compiled inference (`forward`) and explanation ms/image on one batch, and peak RSS."""
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
        "explanation_ms_per_image": per_image_ms(lambda: explainer(batch)),
        # Whole-process high-water mark (Linux reports KiB): an upper bound, not the model's share.
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }


def _validation_tuned_iou(explainer, val: dict | None, config, maps, masks, val_maps=None) -> dict:
    """IoU with the binarisation value that maximises IoU on the validation split (none for otsu/no val).
    `val_maps`: the explainer's maps of the validation lesion images, when already computed (by `auto`)."""
    method = config.explain.binarize
    if val is None or method == "otsu":
        return {}
    chosen = lesion_examples(val)
    if not len(chosen):
        return {}
    if val_maps is None:
        val_maps = explainer(val["image"][chosen], val["label"][chosen])
    value, _ = tune_binarization(val_maps, val["mask"][chosen] > 0.5, method)
    tuned = iou(maps, masks, method, value)
    return {"binarize_value_tuned_on_val": value,
            "iou_mean_val_tuned": float(np.nanmean(tuned)) if np.isfinite(tuned).any() else None}


def evaluate_run(run_dir: str, split: str = "test") -> dict:
    """Writes `eval/metrics.json`, ROC and confusion PNGs, the default explanation's choice
    (`explanation.json`), maps and overlays; returns the metrics."""
    run = load_run(run_dir)
    config, manifest, data_dir, model = run.config, run.manifest, run.data_dir, run.model
    out_dir = run.paths.eval_dir
    make_dirs(out_dir)
    data = collect_split(data_dir, manifest, config, split)
    multi_label, names = manifest["multi_label"], manifest["class_names"]
    # The validation split, read once: it fits the calibration and picks the decision threshold and the
    # IoU binarisation value.
    val = collect_split(data_dir, manifest, config, "val") if split != "val" and "val" in manifest["splits"] else None
    calibration = calibration_lib.run_calibration(
        run, val if val is not None else lambda: collect_split(data_dir, manifest, config, "val"))
    probabilities = calibration_lib.predict(model, data["image"], calibration, multi_label)
    labels = metric_labels(data, multi_label)
    report = classification_report(labels, probabilities, names, multi_label=multi_label)
    report["auc_ci"] = bootstrap_ci(lambda y, p: report_auc(y, p, multi_label), labels, probabilities)
    uncalibrated = model.predict(data["image"], batch_size=128, verbose=0)
    calibration_report = {**calibration, "split": split,
                          # The model's own decision (argmax before calibration: the MedMNIST protocol's ACC);
                          # `classification` decides on the calibrated probabilities, which a bias can move.
                          "accuracy_uncalibrated": None if multi_label else float(
                              np.mean(np.argmax(uncalibrated, axis=-1) == labels)),
                          "before": calibration_summary(labels, uncalibrated, names, multi_label),
                          "after": calibration_summary(labels, probabilities, names, multi_label)}
    validation_threshold = None
    if not multi_label and len(names) == 2 and val is not None:
        # Threshold chosen on validation (Youden's J), then applied once to this split.
        val_probabilities = calibration_lib.predict(model, val["image"], calibration, multi_label)
        threshold = youden_threshold(np.argmax(val["label"], axis=-1), val_probabilities[:, 1])
        validation_threshold = {"method": "youden on val", "threshold": threshold,
                                "report": classification_report(labels, probabilities, names, threshold=threshold)}
    plot_roc(labels, probabilities, names, multi_label, os.path.join(out_dir, "roc.png"))
    if not multi_label:
        plot_confusion_matrix(report["confusion_matrix"], names, os.path.join(out_dir, "confusion_matrix.png"))

    # The run's default explanation (explain.method; `auto` chooses on the validation masks), then
    # localisation: explain the true class (every positive label) of images that have a lesion mask.
    choice, val_maps = choose_with_maps(model, config, val)
    save_choice(out_dir, choice)
    indices = lesion_examples(data)
    localization = {"num_evaluated": 0}
    explainer = explainer_for(model, choice, batch_size=64)
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
        localization.update(_validation_tuned_iou(explainer, val, config, maps, masks, val_maps))
        localization.update(deletion_insertion(scores, data["image"][indices], maps, targets))
        localization.update(average_drop_increase(scores, data["image"][indices], maps, targets))
        # ROAD (Rong et al., 2022; noisy linear imputation, no out-of-distribution holes) on the first
        # ROAD_IMAGES lesion images: its imputation is the slow part, so a subset keeps evaluate fast
        few = slice(0, ROAD_IMAGES)
        volumes = data["image"].ndim == 5
        # ROAD's noisy linear imputation is defined on 2-D pixel neighbourhoods: None for volumes
        debiased = {"road_morf": None, "road_lerf": None} if volumes else road(
            scores, data["image"][indices][few], maps[few], targets[few])
        localization.update({"road_morf": debiased["road_morf"], "road_lerf": debiased["road_lerf"],
                             "road_images": 0 if volumes else min(ROAD_IMAGES, len(indices))})
        if len(indices) > 1:
            localization["specificity"] = map_specificity(maps)
        write_npz_atomic(os.path.join(out_dir, MAPS_FILE), maps=maps, masks=masks, indices=indices)
        shown = slice(0, config.explain.num_overlays)
        titles = [f"#{i} p={probabilities[i].max():.2f}" for i in indices[shown]]
        grid = save_volume_overlay_grid if volumes else save_overlay_grid  # volumes: planes through each peak
        grid(os.path.join(out_dir, OVERLAYS_FILE), data["image"][indices][shown], maps[shown], masks[shown], titles)
    metrics = {
        "split": split,
        "classification": report,
        "classification_at_validation_threshold": validation_threshold,
        "calibration": calibration_report,
        "explanation": dataclasses.asdict(choice),
        "localization": {"method": choice.method, "layer": choice.layer, "binarize": config.explain.binarize,
                         "binarize_value": config.explain.binarize_value, **localization},
        "efficiency": efficiency(model, data["image"], explainer, forward),
    }
    write_json_atomic(metrics, run.paths.metrics)
    return metrics


def headline(metrics: dict) -> dict:
    """The figures a command prints from `evaluate_run`'s metrics."""
    classification, localization = metrics["classification"], metrics["localization"]
    return {
        "split": metrics["split"],
        "auc": classification["auc"],
        "accuracy": classification["accuracy"],
        "accuracy_uncalibrated": metrics.get("calibration", {}).get("accuracy_uncalibrated"),
        "sensitivity": classification.get("sensitivity"),
        "specificity": classification.get("specificity"),
        "explanation": Choice(**metrics["explanation"]).name,
        "iou": localization.get("iou_mean"),
        "pointing_game": localization.get("pointing_game"),
        "deletion_auc": localization.get("deletion_auc"),
        "insertion_auc": localization.get("insertion_auc"),
        "map_specificity": (localization.get("specificity") or {}).get("specificity"),
        "ece": _mean_ece(metrics.get("calibration", {}).get("after")),
        "ece_uncalibrated": _mean_ece(metrics.get("calibration", {}).get("before")),
    }


def _mean_ece(summary: dict | None) -> float | None:
    """Mean ECE over a `calibration_summary`'s classes (the positive class only, for binary)."""
    values = [c["ece"] for c in (summary or {}).values() if c["ece"] is not None]
    return float(np.mean(values)) if values else None


def explain_run(run_dir: str, methods, count: int = 32, split: str = "test", target: str = "predicted",
                batch_size: int = 16, precision: str = "float32", out: str | None = None) -> dict:
    """Explains the first `count` images of `split` (lesion images first) with each method and saves them.

    `target`: "predicted" (the class the float32 model predicts, whatever `precision`) or "true".
    """
    run = load_run(run_dir)
    data = collect_split(run.data_dir, run.manifest, run.config, split)
    indices = lesions_first(data, count)
    images = data["image"][indices]
    calibration = calibration_lib.run_calibration(
        run, lambda: collect_split(run.data_dir, run.manifest, run.config, "val"))
    probabilities = calibration_lib.predict(run.model, images, calibration, run.manifest["multi_label"])
    targets = data["label"][indices] if target == "true" else probabilities
    if not run.manifest["multi_label"] or target == "predicted":
        targets = targets.argmax(-1)
    maps = {}
    for method in methods:
        explainer = make_explainer(method, run.model, default_layer=run.config.explain.layer, batch_size=batch_size,
                                   precision=precision)
        maps[method] = explainer(images, targets)
    names = run.manifest["class_names"]
    captions = [f"#{i} true={names[int(np.argmax(data['label'][i]))]} p={probabilities[k].max():.2f}"
                for k, i in enumerate(indices)]
    out = out or run.paths.explanations
    save_explanations(out, images, maps, indices, captions, os.path.join(run.paths.tensorboard, "explanations"))
    return {"explanations": out, "methods": list(methods), "images": len(indices),
            "index": os.path.join(out, "index.html")}
