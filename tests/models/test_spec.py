"""The model ↔ explainer contract: builders declare a ModelSpec, load_run re-attaches it, the rest read it."""

import json
import os
import warnings

import keras
import numpy as np
import pytest

from tfxmed.config import Experiment, ModelConfig, ResNetAttentionConfig, SmallCnnConfig
from tfxmed.explain import GradCam, Saliency
from tfxmed.models import (
    ModelSpec,
    attention_model,
    build_model,
    declare_spec,
    declared_spec,
    default_explain_layer,
    logits_model,
    model_spec,
)
from tfxmed.models.small_cnn import small_cnn
from tfxmed.runs import RunPaths, load_run, write_run_info

TINY = {"small_cnn": SmallCnnConfig(width=4, blocks=[1, 1]),
        "resnet50_attention": ResNetAttentionConfig(blocks=[1, 1, 2, 1], width=4)}
EXPECTED = {
    ("small_cnn", True): ModelSpec("csam", attention_layer="csam_spatial",
                                   candidate_layers=("conv1_1_relu", "last_conv_relu")),
    ("small_cnn", False): ModelSpec("last_conv_relu", candidate_layers=("conv1_1_relu",)),
    ("resnet50_attention", True): ModelSpec(
        "csam", attention_layer="csam_spatial",
        candidate_layers=("conv2_block1_out", "conv3_block1_out", "conv4_block2_out")),
    # without attention: the third stage's last block, with the earlier stages as candidates
    ("resnet50_attention", False): ModelSpec(
        "conv4_block2_out", candidate_layers=("conv2_block1_out", "conv3_block1_out")),
}


def _config(name: str, attention: bool) -> ModelConfig:
    return ModelConfig(name=name, attention=attention, **{name: TINY[name]})


@pytest.mark.parametrize(("name", "attention"), list(EXPECTED))
def test_each_builder_declares_its_spec_from_its_arguments(name, attention):
    config = _config(name, attention)
    model = build_model(config, (32, 32, 1), 2, False)
    assert declared_spec(model) == model_spec(config) == EXPECTED[name, attention]
    spec = declared_spec(model)
    for layer in (spec.explain_layer, spec.logits_layer, spec.attention_layer, *spec.candidate_layers):
        assert layer is None or model.get_layer(layer) is not None
    assert default_explain_layer(model) == spec.explain_layer


def test_views_read_the_declaration():
    model = small_cnn((16, 16, 1), 2, attention=False, width=4, blocks=(1,))
    images = np.random.default_rng(0).normal(size=(2, 16, 16, 1)).astype("float32")
    logits = logits_model(model).predict(images, verbose=0)
    np.testing.assert_allclose(keras.ops.softmax(logits).numpy(), model.predict(images, verbose=0), rtol=1e-5)
    with pytest.raises(ValueError, match="declares no attention layer"):
        attention_model(model)
    with pytest.raises(ValueError, match="declares no ModelSpec"):
        logits_model(keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]))
    with pytest.raises(TypeError, match="must be a ModelSpec"):
        declare_spec(model, {"explain_layer": "csam"})


def _foreign_model():
    """features (4-D) → later (4-D) → GAP → Dense `scores` → softmax; no layer has a tfxmed name."""
    inputs = keras.Input((8, 8, 1))
    features = keras.layers.Conv2D(3, 3, padding="same", activation="relu", name="features")(inputs)
    later = keras.layers.Conv2D(2, 1, name="later")(features)
    scores = keras.layers.Dense(2, name="scores")(keras.layers.GlobalAveragePooling2D()(later))
    return keras.Model(inputs, keras.layers.Activation("softmax", name="probabilities")(scores))


def test_a_declared_spec_is_what_explainers_read():
    model = declare_spec(_foreign_model(), ModelSpec(explain_layer="features", logits_layer="scores"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a declared logits layer needs no guess, so no warning
        explainer = GradCam(model)
    assert explainer.layer == "features"
    images = np.random.default_rng(1).normal(size=(2, 8, 8, 1)).astype("float32")
    scores = keras.Model(model.inputs[0], model.get_layer("scores").output).predict(images, verbose=0)
    np.testing.assert_allclose(explainer.predict_scores(images), scores, rtol=1e-5)


def test_a_model_without_a_spec_gets_the_generic_fallback():
    model = _foreign_model()
    assert declared_spec(model) is None
    assert default_explain_layer(model) == "later"  # the last layer with a 4-D output
    with pytest.warns(UserWarning, match="ends in softmax"):
        explainer = Saliency(model)
    images = np.random.default_rng(2).normal(size=(2, 8, 8, 1)).astype("float32")
    scores = keras.Model(model.inputs[0], model.get_layer("scores").output).predict(images, verbose=0)
    np.testing.assert_allclose(explainer.predict_scores(images), scores, rtol=1e-5)
    flat = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="no 4-D feature map"):
        default_explain_layer(flat)


def test_load_run_re_attaches_the_spec_keras_does_not_save(tmp_path):
    config = Experiment()
    config.model = _config("small_cnn", True)
    run_dir, data_dir = str(tmp_path / "run"), tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "manifest.json").write_text(json.dumps({"num_classes": 2}))
    write_run_info(config, run_dir, {"data_dir": str(data_dir)})
    model = build_model(config.model, (16, 16, 1), 2, False)
    os.makedirs(os.path.dirname(RunPaths(run_dir).best_checkpoint))
    model.save(RunPaths(run_dir).best_checkpoint)
    assert declared_spec(keras.saving.load_model(RunPaths(run_dir).best_checkpoint)) is None
    assert declared_spec(load_run(run_dir).model) == declared_spec(model)
