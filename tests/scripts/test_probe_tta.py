"""scripts/probe_tta.py: validation scores with and without the left-right mirrored mean, paired per run."""

from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest

from tests.helpers import REPO


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("probe_tta", os.path.join(REPO, "scripts", "probe_tta.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_mirrored_mean_averages_each_image_with_its_mirror(script, tiny_model, rng):
    images = rng.random((4, 32, 32, 1)).astype(np.float32)
    symmetric = (images + images[:, :, ::-1]) / 2
    plain = tiny_model.predict(symmetric, verbose=0)
    np.testing.assert_allclose(script.predictions(tiny_model, symmetric)[0], plain, atol=1e-6)
    np.testing.assert_allclose(script.predictions(tiny_model, symmetric)[1], plain, atol=1e-6)
    expected = (tiny_model.predict(images, verbose=0) + tiny_model.predict(images[:, :, ::-1].copy(), verbose=0)) / 2
    np.testing.assert_allclose(script.predictions(tiny_model, images)[1], expected, atol=1e-6)
    assert not np.allclose(expected, tiny_model.predict(images, verbose=0), atol=1e-6)  # the mirror changes something


def test_a_run_is_scored_on_validation_with_and_without(script, study_run):
    from tfxmed.evaluation import collect_split, metric_labels
    from tfxmed.runs import load_run

    row = script.probe(study_run)
    run = load_run(study_run)
    data = collect_split(run.data_dir, run.manifest, run.config, "val")
    labels = metric_labels(data, False)
    assert row["split"] == "val" and row["images"] == len(labels) == 32
    plain, mirrored_mean = script.predictions(run.model, data["image"])
    assert row["without"] == script.scores(labels, run.model.predict(data["image"], verbose=0), False)
    assert row["without"] == script.scores(labels, plain, False)
    assert row["with"] == pytest.approx(script.scores(labels, mirrored_mean, False))
    with pytest.raises(SystemExit, match="no 'holdout' split"):
        script.probe(study_run, "holdout")


def test_scores_and_the_paired_summary(script):
    labels = np.array([0, 1, 1, 0])
    good = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.6, 0.4]])
    row = script.scores(labels, good, False)
    assert row["auc"] == 1.0 and row["accuracy"] == 1.0
    assert row["nll"] == pytest.approx(-np.mean(np.log([0.9, 0.8, 0.7, 0.6])))
    multi = script.scores(np.array([[1, -1], [0, 1]]), np.array([[0.8, 0.3], [0.4, 0.9]]), True)
    assert multi["accuracy"] is None  # the -1 label is left out of the NLL
    assert multi["nll"] == pytest.approx(-np.mean(np.log([0.8, 0.6, 0.9])))
    metrics = lambda auc, accuracy, nll: {"auc": auc, "accuracy": accuracy, "nll": nll}  # noqa: E731
    rows = [{"without": metrics(0.90, 0.8, 0.30), "with": metrics(0.92, 0.8, 0.28)},
            {"without": metrics(0.95, 0.9, 0.20), "with": metrics(0.94, 0.7, 0.19)}]
    summary = script.summarise(rows)
    assert summary["auc"]["difference"]["mean"] == pytest.approx(0.005) and summary["auc"]["improved_in"] == 1
    assert summary["nll"]["improved_in"] == 2 and summary["accuracy"]["improved_in"] == 0
