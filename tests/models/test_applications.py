"""DenseNet121, EfficientNetB0 and VGG16 from keras.applications with CSAM after stage 3 (issue 14 §1): built at
64 and 224 px, trained a step and explained by the CAM family and IG, and trained with the consistency loss under
mirrored on two logical CPUs."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import keras
import numpy as np
import pytest

from tests.helpers import REPO, TINY_CONFIG
from tests.test_distribute import MIRRORED_SCRIPT
from tfxmed.config import APPLICATIONS
from tfxmed.explain.registry import make_explainer
from tfxmed.models import attention_model, build_model, declared_spec, logits_model
from tfxmed.models.applications import BACKBONES, application
from tfxmed.models.keras_internals import inbound_layers


def test_the_config_names_every_backbone_the_factory_builds():
    assert set(APPLICATIONS) == set(BACKBONES)


# DenseNet121 and EfficientNetB0 take 1-1.5 min each to train a step and run four explainers on 2 cores: that test
# is `heavy` for them (`bash scripts/test.sh -m heavy`); VGG16 runs it by default, and every backbone is built,
# checked and run at 224 px in the default run.
HEAVY_TO_TRAIN = ("densenet121", "efficientnetb0")


@pytest.fixture(scope="module", params=sorted(BACKBONES))
def built(request):
    keras.utils.set_random_seed(0)
    return request.param, application(request.param, (64, 64, 1), 2)


def test_csam_sits_right_after_the_third_stage_at_a_sixteenth_of_the_input(built):
    name, model = built
    stage = BACKBONES[name].stages[2]
    assert [layer.name for layer in inbound_layers(model.get_layer("csam_channel"))] == [stage]
    assert model.get_layer("csam").output.shape[1:3] == (4, 4)  # 64 px / 16
    spec = declared_spec(model)
    assert (spec.explain_layer, spec.attention_layer, spec.candidate_layers) == ("csam", "csam_spatial",
                                                                                 BACKBONES[name].stages)
    # tfxmed standardises images itself: the application's own rescaling / normalisation is left out.
    assert not any(isinstance(layer, (keras.layers.Rescaling, keras.layers.Normalization)) for layer in model.layers)
    x = np.random.default_rng(0).normal(size=(2, 64, 64, 1)).astype("float32")
    probabilities = model.predict(x, verbose=0)
    np.testing.assert_allclose(keras.ops.softmax(logits_model(model).predict(x, verbose=0)), probabilities, atol=1e-5)
    assert attention_model(model).predict(x, verbose=0).shape == (2, 4, 4, 1)


def test_the_same_weights_serve_224_px_inputs(built):
    name, model = built
    large = application(name, (224, 224, 1), 2)
    assert large.count_params() == model.count_params()
    large.set_weights(model.get_weights())
    assert large.get_layer("csam").output.shape[1:3] == (14, 14)
    probabilities = large.predict(np.zeros((1, 224, 224, 1), "float32"), verbose=0)
    assert probabilities.shape == (1, 2) and probabilities.sum() == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("heavy", [pytest.param(True, marks=pytest.mark.heavy), False], ids=["heavy", "default"])
def test_a_training_step_changes_it_and_every_explainer_reads_it(built, heavy):
    """(The consistency loss trains each backbone in the mirrored test below.)"""
    name, model = built
    if heavy != (name in HEAVY_TO_TRAIN):
        pytest.skip("runs in the other group (default or heavy)")
    rng = np.random.default_rng(1)
    images = rng.normal(size=(8, 64, 64, 1)).astype("float32")
    labels = np.eye(2, dtype="float32")[np.arange(8) % 2]
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=keras.losses.CategoricalCrossentropy())
    before = [w.numpy().copy() for w in model.trainable_weights]
    history = model.fit(images, labels, batch_size=4, epochs=1, verbose=0)
    assert math.isfinite(history.history["loss"][0])
    assert sum(not np.allclose(a, w.numpy()) for a, w in zip(before, model.trainable_weights)) > 0.9 * len(before)
    for method in ("gradcam", "gradcampp", "layercam", "ig"):
        maps = make_explainer(method, model)(images[:2], np.array([1, 0]))
        assert maps.shape == (2, 64, 64) and np.all(np.isfinite(maps)), method
        assert maps.std() > 0, f"{method} on {name} gives a flat map"


def test_build_model_reads_the_config_and_refuses_missing_imagenet_weights(tmp_path, monkeypatch):
    from tfxmed.config import load_config
    from tfxmed.models.weights import WeightsUnavailable

    config = load_config(None, ["model.name=vgg16", "model.attention=false", "data.image_size=32"]).model
    model = build_model(config, (32, 32, 1), 3, True)
    assert declared_spec(model).explain_layer == "block4_pool" and model.output.shape == (None, 3)
    assert model.get_layer("probabilities").activation.__name__ == "sigmoid"
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    config.weights = "imagenet"
    with pytest.raises(WeightsUnavailable, match=r"vgg16_weights_tf_dim_ordering_tf_kernels_notop\.h5"):
        build_model(config, (32, 32, 1), 2, False)


# VGG16 runs by default; DenseNet121 and EfficientNetB0 take 1.5-3 min each (tracing the second-order step of a
# 100-400-layer graph on two replicas), so they are `heavy`: `bash scripts/test.sh -m heavy` runs them.
@pytest.mark.slow
@pytest.mark.parametrize("name", [pytest.param(name, marks=[pytest.mark.heavy] if name != "vgg16" else [])
                                  for name in sorted(BACKBONES)])
def test_mirrored_strategy_trains_each_backbone_with_the_consistency_loss(tmp_path, name):
    result = subprocess.run(
        [sys.executable, "-c", MIRRORED_SCRIPT, TINY_CONFIG, str(tmp_path), f"model.name={name}",
         "train.consistency.enabled=true", "train.steps_per_epoch=2"],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["replicas"] == 2 and report["changed"] > 0
    assert math.isfinite(report["loss"]) and 0 < report["exp_loss"] < 1
