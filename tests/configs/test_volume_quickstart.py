"""Volumes end to end (issue 15): the synthetic CT source converted on demand, a 3-D ResNet trained, evaluated
(3-D localisation), exported (volumes in HU in, explanations at the caller's grid out, reloaded in a fresh process)
and reported with orthogonal planes; a CNN-RNN trained on the same data; model and data kinds must match."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import REPO
from tests.test_exporting import _served_in_a_fresh_process
from tfxmed.config import load_config

VOLUME_CONFIG = os.path.join(REPO, "configs", "volume_quickstart.yaml")


def _tiny(tmp_path, *overrides):
    return load_config(VOLUME_CONFIG, [f"runtime.run_dir={tmp_path / 'run'}", f"data.tfrecord_dir={tmp_path / 'data'}",
                                       "data.image_size=16", "data.synthetic.image_size=32",
                                       "data.synthetic.train_examples=32", "data.synthetic.val_examples=12",
                                       "data.synthetic.test_examples=12", "train.epochs=2", "model.resnet3d.width=4",
                                       "explain.method=gradcam", "explain.num_overlays=2", *overrides])


@pytest.mark.slow
def test_a_3d_resnet_trains_evaluates_exports_and_reports_on_synthetic_volumes(tmp_path):
    from tfxmed import calibration
    from tfxmed.evaluation import collect_split
    from tfxmed.runs import load_run
    from tfxmed.workflow import run_all

    summary = run_all(_tiny(tmp_path), tf.distribute.get_strategy())
    assert summary["split"] == "test" and summary["explanation"] == "gradcam@csam"
    assert 0.0 <= summary["pointing_game"] <= 1.0 and summary["iou"] is not None
    metrics = json.load(open(summary["artefacts"]["metrics"]))
    assert metrics["classification"]["num_examples"] == 12 and metrics["localization"]["num_evaluated"] > 0
    assert metrics["localization"]["road_morf"] is None  # ROAD's imputation is 2-D
    maps = np.load(os.path.join(tmp_path / "run" / "eval", "explanation_maps.npz"))["maps"]
    assert maps.shape[1:] == (16, 16, 16)
    report = open(summary["artefacts"]["report"], encoding="utf-8").read()
    assert "data:image/png;base64," in report
    run = load_run(str(tmp_path / "run"))
    test = collect_split(run.data_dir, run.manifest, run.config, "test")
    expected = calibration.predict(run.model, test["image"], json.load(open(run.paths.calibration)), False)
    # Served in a fresh process: volumes in stored units (HU) at 32³, windowed and resampled in the graph.
    from tfxmed.data.synthetic_volumes import VolumeSpec, generate_volumes

    volumes = generate_volumes(VolumeSpec(size=32, num_examples=12, difficulty=0.3, seed=42), "test").volumes
    served = _served_in_a_fresh_process(summary["artefacts"]["saved_model"],
                                        volumes[:3, ..., None].astype("float32"), tmp_path)
    np.testing.assert_allclose(served["serving"], expected[:3], atol=2e-3)  # the pipeline resamples alike
    assert served["maps"].shape == (3, 32, 32, 32)


@pytest.mark.slow
def test_the_cnn_rnn_trains_on_the_same_volumes_and_a_2d_model_is_refused(tmp_path):
    from tfxmed.evaluation import evaluate_run
    from tfxmed.training import train

    result = train(_tiny(tmp_path, "model.name=cnn_rnn", "model.cnn_rnn.width=4", "model.cnn_rnn.units=4"),
                   tf.distribute.get_strategy(), verbose=0)
    metrics = evaluate_run(result.run_dir)
    assert metrics["explanation"]["layer"] == "slice_features" and metrics["localization"]["num_evaluated"] > 0
    with pytest.raises(ValueError, match="the data in this run are volumes, which need volume models"):
        train(_tiny(tmp_path, "model.name=small_cnn", f"runtime.run_dir={tmp_path / 'flat'}"),
              tf.distribute.get_strategy(), verbose=0)


@pytest.mark.slow
@pytest.mark.parametrize("model", ["resnet3d", "cnn_rnn"])
def test_both_volume_models_train_under_mirrored_with_the_consistency_loss_in_3d(tmp_path, model):
    import math
    import subprocess
    import sys

    from tests.test_distribute import MIRRORED_SCRIPT

    result = subprocess.run(
        [sys.executable, "-c", MIRRORED_SCRIPT, VOLUME_CONFIG, str(tmp_path), f"model.name={model}",
         "data.image_size=16", "data.synthetic.image_size=32", "data.synthetic.train_examples=16",
         "data.synthetic.val_examples=8", "data.synthetic.test_examples=4", "model.resnet3d.width=4",
         "model.cnn_rnn.width=4", "model.cnn_rnn.units=4", "train.consistency.enabled=true",
         "train.steps_per_epoch=2"],
        cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["replicas"] == 2 and report["changed"] > 0
    assert math.isfinite(report["loss"]) and 0 < report["exp_loss"] < 1
