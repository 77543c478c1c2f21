"""Building a study from a run (`tfxmed.reader_study.cases`): outcomes, stratified sampling, and a study
of the tiny run with its rendered PNGs and localisation scores from the project's metrics."""

import os
import sqlite3

import numpy as np
import pytest

from tfxmed.errors import OutputExistsError
from tfxmed.reader_study.cases import create_study, outcomes, stratified_sample


def test_binary_outcomes_explain_the_finding_and_others_the_predicted_class():
    labels = np.eye(2)[[1, 1, 0, 0]]
    probabilities = np.array([[0.2, 0.8], [0.7, 0.3], [0.4, 0.6], [0.9, 0.1]])
    names, explained = outcomes(labels, probabilities, multi_label=False, threshold=0.5)
    assert names.tolist() == ["TP", "FN", "FP", "TN"] and explained.tolist() == [1, 1, 1, 1]
    assert outcomes(labels, probabilities, False, threshold=0.65)[0].tolist() == ["TP", "FN", "TN", "TN"]
    three = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])
    names, explained = outcomes(np.eye(3)[[0, 1]], three, multi_label=False)
    assert names.tolist() == ["correct", "wrong"] and explained.tolist() == [0, 2]


def test_stratified_sample_takes_outcomes_in_turn():
    outcome = np.array(["TP"] * 10 + ["FP"] * 2 + ["FN"] * 1 + ["TN"] * 10)
    chosen = stratified_sample(outcome, 9, seed=3)
    counts = {name: int((outcome[chosen] == name).sum()) for name in ("TP", "FP", "FN", "TN")}
    assert counts == {"TP": 3, "FP": 2, "FN": 1, "TN": 3} and len(set(chosen)) == 9
    assert np.array_equal(chosen, stratified_sample(outcome, 9, seed=3))  # reproducible
    assert len(stratified_sample(outcome, 100)) == len(outcome)  # at most the split


def test_a_study_of_the_tiny_run(built_study, study_run, tiny_dataset):
    from tfxmed.config import load_config
    from tfxmed.evaluation import collect_split
    from tfxmed.metrics.localization import iou, pointing_game
    from tfxmed.runs import load_run
    from tfxmed.storage import load_manifest

    path, summary = built_study
    assert summary["cases"] == 8 and sum(summary["outcomes"].values()) == 8
    assert summary["methods"] == ["gradcam", "ig", "fusion"] and summary["threshold"] == 0.5
    connection = sqlite3.connect(path)
    cases = connection.execute("SELECT case_id, split_index, image_id, outcome FROM cases ORDER BY position").fetchall()
    maps = connection.execute("SELECT case_id, method, image_id, iou, pointing_game FROM maps").fetchall()
    assert len(cases) == 8 and len(maps) == 24 and len({m[2] for m in maps} | {c[2] for c in cases}) == 32
    files = sorted(os.listdir(summary["images"]))
    assert files == sorted(f"{image_id}.png" for image_id in {m[2] for m in maps} | {c[2] for c in cases})
    for name in files:
        with open(os.path.join(summary["images"], name), "rb") as stream:
            assert stream.read(4) == b"\x89PNG"
    # The stored localisation is the project's metric on the same maps (gradcam, recomputed here).
    run = load_run(study_run)
    config = load_config(os.path.join(study_run, "config.yaml"))
    test = collect_split(tiny_dataset, load_manifest(tiny_dataset), config, "test")
    from tfxmed.explain import make_explainer

    index = np.array([c[1] for c in cases])
    recomputed = make_explainer("gradcam", run.model, default_layer=config.explain.layer)(
        test["image"][index], np.ones(len(index), int))
    masks = test["mask"][index] > 0.5
    expected_iou = iou(recomputed, masks, config.explain.binarize, config.explain.binarize_value)
    expected_hit = pointing_game(recomputed, masks, config.explain.pointing_tolerance)
    stored = {m[0]: (m[3], m[4]) for m in maps if m[1] == "gradcam"}
    assert any(score is not None for score, _ in stored.values())  # some cases have a lesion mask
    for k, (case_id, *_rest) in enumerate(cases):
        lesion = bool(masks[k].any() and test["has_mask"][index[k]])
        got_iou, got_hit = stored[case_id]
        if lesion:
            assert got_iou == pytest.approx(expected_iou[k], abs=1e-6) and got_hit == expected_hit[k]
        else:
            assert got_iou is None and got_hit is None


def test_create_refuses_an_existing_study_and_a_missing_run(built_study, tmp_path):
    path, _ = built_study
    with pytest.raises(OutputExistsError, match="exists: choose a new study file"):
        create_study("unused", path)
    with pytest.raises(FileNotFoundError, match="config.yaml not found"):
        create_study(str(tmp_path / "nope"), str(tmp_path / "new.db"))
    assert not os.path.exists(tmp_path / "new.db") and not os.path.exists(tmp_path / "new_files")
