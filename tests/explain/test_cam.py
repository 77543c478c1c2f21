"""The CAM family's shared pipeline (`tfxmed.explain.cam`): variants differ only where their weights do,
a layer inside a nested backbone is found, and the target is read off the explainer's own forward pass."""

import keras
import numpy as np
import pytest

from tfxmed.explain import (
    EigenCam,
    EigenGradCam,
    GradCam,
    GradCamPlusPlus,
    HiResCam,
    LayerCam,
    XGradCam,
    make_explainer,
)

VARIANTS = (GradCam, GradCamPlusPlus, XGradCam, LayerCam, HiResCam, EigenCam, EigenGradCam)


def test_variants_differ_where_their_formulas_differ(hand_model, rng):
    images = rng.normal(size=(2, 4, 4, 1)).astype("float32")
    maps = {m.__name__: m(hand_model, layer="features", normalize=False)(images, 1) for m in VARIANTS}
    assert not np.allclose(maps["GradCam"], maps["HiResCam"])
    assert not np.allclose(maps["GradCam"], maps["LayerCam"])


def _backbone():
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="inner_conv")(inputs)
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="inner_last")(x)
    return keras.Model(inputs, x, name="backbone")


def test_grad_cam_on_a_layer_inside_a_nested_backbone(rng):
    keras.utils.set_random_seed(1)
    backbone = _backbone()
    nested_sequential = keras.Sequential(
        [keras.Input((8, 8, 1)), backbone, keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2, name="logits")]
    )
    head_weights = nested_sequential.get_layer("logits").get_weights()

    def head(x):
        dense = keras.layers.Dense(2, name="logits")
        out = dense(keras.layers.GlobalAveragePooling2D()(x))
        dense.set_weights(head_weights)
        return out

    inputs = keras.Input((8, 8, 1))
    nested_functional = keras.Model(inputs, head(backbone(inputs)))
    # The same computation written flat, as the reference.
    flat_inputs = keras.Input((8, 8, 1))
    features = backbone.get_layer("inner_last")(backbone.get_layer("inner_conv")(flat_inputs))
    flat = keras.Model(flat_inputs, head(features))
    images = rng.normal(size=(3, 8, 8, 1)).astype("float32")
    expected = GradCam(flat, layer="inner_last")(images, 1)
    for model in (nested_sequential, nested_functional):
        np.testing.assert_allclose(GradCam(model, layer="inner_last")(images, 1), expected, rtol=1e-4, atol=1e-6)
    inner = GradCam(nested_functional, layer="inner_conv")(images, 0)
    assert inner.shape == (3, 8, 8) and not np.allclose(inner, GradCam(flat, layer="inner_last")(images, 0))


@pytest.mark.parametrize("method", ["gradcam", "gradcampp", "eigengradcam", "layercam"])
def test_no_targets_explain_the_predicted_class(hand_model, rng, monkeypatch, method):
    images = rng.normal(size=(5, 4, 4, 1)).astype("float32")
    predicted = np.argmax(hand_model.predict(images, verbose=0), axis=-1)
    assert len(set(predicted.tolist())) == 2  # both classes occur, so a wrong target would show
    explainer = make_explainer(method, hand_model, default_layer="features", batch_size=2)
    expected = explainer(images, predicted)
    assert explainer.predicts_in_graph  # the CAM family reads the target off its own forward pass
    monkeypatch.setattr(explainer, "predict_scores", lambda *_: pytest.fail("separate prediction pass"))
    np.testing.assert_allclose(explainer(images), expected, atol=1e-6)
