"""The model factory (`tfxmed.models.factory`): every config field reaches the builder, local weights load,
unknown names list the choices, and layers are found inside nested sub-models."""

import dataclasses

import keras
import numpy as np
import pytest

from tfxmed.config import MODEL_NAMES, ModelConfig, SmallCnnConfig
from tfxmed.models import build_model, find_layer, model_spec
from tfxmed.models.factory import layer_output, model_input


def test_local_weights_file_loads(tmp_path, rng):
    config = ModelConfig(name="small_cnn", small_cnn=SmallCnnConfig(blocks=[1, 1], width=4))
    first = build_model(config, (16, 16, 1), 2, False)
    path = str(tmp_path / "small.weights.h5")
    first.save_weights(path)
    second = build_model(dataclasses.replace(config, weights=path), (16, 16, 1), 2, False)
    x = rng.normal(size=(2, 16, 16, 1)).astype("float32")
    np.testing.assert_allclose(second.predict(x, verbose=0), first.predict(x, verbose=0), rtol=1e-6)


def test_unknown_model_name_lists_choices():
    with pytest.raises(ValueError, match="resnet50_attention, small_cnn"):
        build_model(ModelConfig(name="resnet18"), (16, 16, 1), 2, False)
    with pytest.raises(ValueError, match=f"model.name must be one of {', '.join(MODEL_NAMES)}; got 'resnet18'"):
        model_spec(ModelConfig(name="resnet18"))


def test_every_small_cnn_field_reaches_the_model():
    config = ModelConfig(name="small_cnn", attention=False, dropout=0.15,
                         small_cnn=SmallCnnConfig(width=6, blocks=[2, 1], kernel_size=5))
    model = build_model(config, (24, 24, 3), 4, multi_label=True)
    assert model.get_layer("conv1_1").kernel.shape == (5, 5, 3, 6)  # kernel size, input channels, width
    assert model.get_layer("conv1_2").kernel.shape == (5, 5, 6, 6)  # two blocks in the first stage
    assert model.get_layer("last_conv").kernel.shape == (5, 5, 6, 12)  # width doubles per stage
    assert model.get_layer("dropout").rate == pytest.approx(0.15)
    assert model.get_layer("probabilities").activation is keras.activations.sigmoid  # multi-label
    assert model.output.shape == (None, 4)
    assert not any(layer.name.startswith("csam") for layer in model.layers)  # attention off


def _nested():
    inner = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Conv2D(2, 1, name="deep")], name="inner")
    middle = keras.Sequential([keras.Input((4, 4, 1)), inner, keras.layers.ReLU(name="middle_relu")], name="middle")
    inputs = keras.Input((4, 4, 1))
    outputs = keras.layers.Dense(1, name="head")(keras.layers.Flatten()(middle(inputs)))
    return keras.Model(inputs, outputs, name="outer")


def test_find_layer_searches_nested_models_and_names_a_missing_one():
    model = _nested()
    assert find_layer(model, "head") is model.get_layer("head")
    assert find_layer(model, "deep") is model.get_layer("middle").get_layer("inner").get_layer("deep")
    with pytest.raises(ValueError, match="no layer named 'shallow' in model 'outer'"):
        find_layer(model, "shallow")


def test_layer_output_is_the_tensor_of_this_models_graph(rng):
    model = _nested()
    assert model_input(model) is model.inputs[0]
    middle = keras.Model(model_input(model), layer_output(model, "middle"))
    images = rng.normal(size=(2, 4, 4, 1)).astype("float32")
    np.testing.assert_allclose(middle.predict(images, verbose=0), model.get_layer("middle")(images).numpy(),
                               rtol=1e-6)
