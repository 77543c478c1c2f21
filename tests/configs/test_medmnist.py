"""configs/medmnist.yaml, unchanged but for the step budget, on generated .npz files of each flavour."""

import os

import pytest

from tests.helpers import COUNTS, REPO, expected_calibration, learnable_npz
from tfxmed.config import load_config

RECIPE = os.path.join(REPO, "configs", "medmnist.yaml")
@pytest.mark.slow
@pytest.mark.parametrize("kind", ["binary", "multi_class", "multi_label"])
def test_recipe_trains_and_evaluates_every_flavour(tmp_path, rng, kind, monkeypatch):
    import tensorflow as tf

    from tfxmed.evaluation import evaluate_run
    from tfxmed.training import train

    monkeypatch.chdir(tmp_path)  # the converted records land in ./data/<stem>-<hash>
    npz = tmp_path / f"{kind}mnist.npz"
    learnable_npz(npz, rng, kind)
    config = load_config(RECIPE, [f"data.npz={npz}", "train.epochs=4", "train.min_steps=0",
                                  f"runtime.run_dir={tmp_path / 'run'}", "train.tensorboard_images=0"])
    result = train(config, tf.distribute.get_strategy(), verbose=0)
    assert os.path.basename(result.data_dir).startswith(f"{kind}mnist-")
    metrics = evaluate_run(str(tmp_path / "run"), "test")
    report = metrics["classification"]
    assert report["num_examples"] == COUNTS["test"]
    assert report["auc"] > 0.9, report  # the band signal is learnt through the 28 → 64 px pipeline
    classes = {"binary": 2, "multi_class": 4, "multi_label": 3}[kind]
    assert len(report["auc_per_class"]) == classes
    has_threshold = metrics["classification_at_validation_threshold"] is not None
    assert has_threshold == (kind == "binary")  # Youden on val: binary single-label only
    # Probabilities calibrated on val: a temperature for softmax heads (or Platt for two classes), Platt per label
    # for sigmoid ones.
    assert metrics["calibration"]["method"] == expected_calibration(kind, metrics["calibration"])
    assert metrics["localization"]["num_evaluated"] == 0  # MedMNIST has no masks: nothing to localise
