"""Evaluating a run (`tfxmed.evaluation.evaluate_run`) on a run directory built without training: the tiny
config on the tiny dataset, with the untrained tiny model saved as its best checkpoint."""

import dataclasses
import json
import os

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from tests.helpers import TINY_CONFIG
from tfxmed import calibration
from tfxmed.config import load_config
from tfxmed.default_explanation import load_choice
from tfxmed.evaluation import MAPS_FILE, OVERLAYS_FILE, collect_split, evaluate_run, headline
from tfxmed.metrics.curves import expected_calibration_error
from tfxmed.metrics.statistics import youden_threshold
from tfxmed.models.factory import logits_model
from tfxmed.runs import RunPaths, load_run, write_run_info
from tfxmed.storage import load_manifest


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory, tiny_dataset, tiny_model):
    """(run directory, the metrics evaluate_run returned, the test split as the pipeline reads it)."""
    run_dir = str(tmp_path_factory.mktemp("evaluation") / "run")
    config = load_config(TINY_CONFIG, [f"runtime.run_dir={run_dir}", f"data.tfrecord_dir={tiny_dataset}"])
    write_run_info(config, run_dir, {"data_dir": tiny_dataset})
    os.makedirs(os.path.dirname(RunPaths(run_dir).best_checkpoint))
    tiny_model.save(RunPaths(run_dir).best_checkpoint)
    metrics = evaluate_run(run_dir)
    return run_dir, metrics, collect_split(tiny_dataset, load_manifest(tiny_dataset), config, "test")


def test_classification_is_scored_on_the_whole_test_split(evaluated, tiny_dataset, tiny_model):
    run_dir, metrics, test = evaluated
    report = metrics["classification"]
    assert metrics["split"] == "test"
    assert report["num_examples"] == load_manifest(tiny_dataset)["splits"]["test"]["count"] == len(test["label"]) == 32
    probabilities = tiny_model.predict(test["image"], verbose=0)  # the saved checkpoint's predictions
    expected = roc_auc_score(np.argmax(test["label"], -1), probabilities[:, 1])
    assert 0.0 <= report["auc"] <= 1.0 and report["auc"] == pytest.approx(expected, abs=1e-6)
    assert report["auc_ci"]["low"] <= report["auc"] <= report["auc_ci"]["high"]
    assert json.load(open(RunPaths(run_dir).metrics)) == json.loads(json.dumps(metrics))
    for plot in ("roc.png", "confusion_matrix.png"):
        assert open(os.path.join(RunPaths(run_dir).eval_dir, plot), "rb").read(4) == b"\x89PNG"


def test_the_explanation_choice_is_recorded(evaluated):
    run_dir, metrics, _ = evaluated
    recorded = metrics["explanation"]  # the tiny config names gradcam; the model declares csam
    assert (recorded["method"], recorded["layer"], recorded["chosen_by"]) == ("gradcam", "csam", "config")
    saved = load_choice(RunPaths(run_dir).eval_dir)  # eval/explanation.json, read by export and report
    assert dataclasses.asdict(saved) == recorded
    assert (metrics["localization"]["method"], metrics["localization"]["layer"]) == ("gradcam", "csam")
    assert headline(metrics)["explanation"] == "gradcam@csam"


def test_localisation_is_evaluated_on_exactly_the_lesion_images(evaluated):
    run_dir, metrics, test = evaluated
    marked = test["mask"].reshape(len(test["mask"]), -1).max(-1) > 0.5
    lesions = np.flatnonzero(test["has_mask"].astype(bool) & marked)
    assert 0 < len(lesions) < len(test["label"])
    assert np.all(np.argmax(test["label"][lesions], -1) == 1)  # a normal image has no lesion
    saved = np.load(os.path.join(RunPaths(run_dir).eval_dir, MAPS_FILE))
    np.testing.assert_array_equal(saved["indices"], lesions)
    assert saved["maps"].shape == (len(lesions), 32, 32)
    np.testing.assert_array_equal(saved["masks"], test["mask"][lesions] > 0.5)
    local = metrics["localization"]
    assert local["num_evaluated"] == len(lesions)
    assert 0.0 <= local["iou_mean"] <= 1.0 and 0.0 <= local["pointing_game"] <= 1.0
    assert 0.0 <= local["deletion_auc"] <= 1.0 and 0.0 <= local["insertion_auc"] <= 1.0
    with open(os.path.join(RunPaths(run_dir).eval_dir, OVERLAYS_FILE), "rb") as png:
        assert png.read(4) == b"\x89PNG"


def test_probabilities_are_calibrated_on_validation_and_the_fit_is_kept(evaluated, tiny_dataset, tiny_model):
    run_dir, metrics, test = evaluated
    recorded = metrics["calibration"]
    saved = json.load(open(RunPaths(run_dir).calibration))
    assert recorded["method"] == saved["method"] and saved["fitted_on"].startswith("val (")
    # The fit is the one the validation split gives.
    config = load_config(RunPaths(run_dir).config)
    val = collect_split(tiny_dataset, load_manifest(tiny_dataset), config, "val")
    expected = calibration.fit(logits_model(tiny_model).predict(val["image"], verbose=0), val["label"], False)
    assert saved["method"] == expected["method"] == expected["selection"]["method"]  # two classes: chosen out of fold
    for key in ("temperature", "scale", "bias"):
        assert np.allclose(saved.get(key, 0.0), expected.get(key, 0.0), rtol=1e-6), key
    # Reported probabilities are the calibrated ones: same AUC, ECE before and after both recorded.
    probabilities = calibration.apply(saved, logits_model(tiny_model).predict(test["image"], verbose=0), False)
    labels = np.argmax(test["label"], -1)
    assert metrics["classification"]["auc"] == pytest.approx(roc_auc_score(labels, probabilities[:, 1]), abs=1e-6)
    name = load_manifest(tiny_dataset)["class_names"][1]
    assert recorded["after"][name]["ece"] == pytest.approx(expected_calibration_error(labels, probabilities[:, 1]))
    assert headline(metrics)["ece"] == recorded["after"][name]["ece"]
    assert headline(metrics)["ece_uncalibrated"] == recorded["before"][name]["ece"]
    # A second run of the same checkpoint reuses the saved fit rather than fitting again.
    assert calibration.run_calibration(load_run(run_dir), val=lambda: pytest.fail("refitted")) == saved


def test_the_decision_threshold_is_chosen_on_validation_and_reported_beside_argmax(evaluated, tiny_dataset):
    run_dir, metrics, test = evaluated
    run = load_run(run_dir)
    val = collect_split(tiny_dataset, run.manifest, run.config, "val")
    saved = json.load(open(RunPaths(run_dir).calibration))
    val_scores = calibration.predict(run.model, val["image"], saved, False)[:, 1]
    chosen = metrics["classification_at_validation_threshold"]
    assert chosen["method"] == "youden on val"
    assert chosen["threshold"] == pytest.approx(youden_threshold(np.argmax(val["label"], -1), val_scores))
    test_scores = calibration.predict(run.model, test["image"], saved, False)[:, 1]
    labels = np.argmax(test["label"], -1)
    assert chosen["report"]["accuracy"] == pytest.approx(np.mean((test_scores >= chosen["threshold"]) == labels))
    # Accuracy at argmax (the MedMNIST protocol) stays beside it.
    assert metrics["classification"]["accuracy"] == pytest.approx(np.mean((test_scores >= 0.5) == labels))
