"""Nested (transfer-learning) models, multi-label targets, 3-D volumes, and the randomisation sanity check."""

import keras
import numpy as np
import pytest
from scipy.stats import spearmanr

from tests.explain.conftest import activations_and_gradients
from tfxmed.explain import GradCam, HiResCam, IntegratedGradients, make_explainer


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


def test_multi_label_target_explains_the_sum_of_positive_labels(hand_model, rng):
    images = rng.normal(size=(2, 4, 4, 1)).astype("float32")
    explainer = HiResCam(hand_model, layer="features", upsample_to_input=False, normalize=False)
    both = explainer(images, np.array([[1.0, 1.0], [1.0, 1.0]]))
    activations, gradients_0 = activations_and_gradients(images, 0)
    _, gradients_1 = activations_and_gradients(images, 1)
    expected = np.maximum(((gradients_0 + gradients_1) * activations).sum(-1), 0)
    np.testing.assert_allclose(both, expected, rtol=1e-4, atol=1e-6)
    per_sample = explainer(images, np.array([[1.0, 0.0], [0.0, 1.0]]))
    np.testing.assert_allclose(per_sample[0], explainer(images[:1], 0)[0], rtol=1e-5)
    np.testing.assert_allclose(per_sample[1], explainer(images[1:], 1)[0], rtol=1e-5)


def test_grad_cam_and_integrated_gradients_on_3d_volumes(rng):
    keras.utils.set_random_seed(2)
    inputs = keras.Input((8, 8, 8, 1))
    x = keras.layers.Conv3D(4, 3, strides=2, padding="same", activation="relu", name="features")(inputs)
    logits = keras.layers.Dense(2, name="logits")(keras.layers.GlobalAveragePooling3D()(x))
    model = keras.Model(inputs, logits)
    volumes = rng.normal(size=(2, 8, 8, 8, 1)).astype("float32")
    raw = GradCam(model, layer="features", upsample_to_input=False, normalize=False)(volumes, 1)
    activations = keras.Model(inputs, x).predict(volumes, verbose=0)
    weights = model.get_layer("logits").get_weights()[0][:, 1] / activations[0, ..., 0].size
    np.testing.assert_allclose(raw, np.maximum((activations * weights).sum(-1), 0), rtol=1e-4, atol=1e-6)
    assert GradCam(model, layer="features")(volumes, 1).shape == (2, 8, 8, 8)
    assert np.all(IntegratedGradients(model, steps=64).completeness_error(volumes, 1) < 0.02)


def test_sanity_check_maps_change_when_weights_are_randomised(rng):
    keras.utils.set_random_seed(3)
    inputs = keras.Input((16, 16, 1))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="features")(inputs)
    logits = keras.layers.Dense(2, name="logits")(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, logits)
    # "Train" a detector of a bright blob in the top-left: fixed, meaningful weights.
    kernel = np.zeros((3, 3, 1, 8), np.float32)
    kernel[1, 1, 0, :] = np.linspace(1, 2, 8)
    model.get_layer("features").set_weights([kernel, np.full(8, -0.5, np.float32)])
    logits_kernel = np.stack([-np.ones(8), np.ones(8)], 1).astype(np.float32)
    model.get_layer("logits").set_weights([logits_kernel, np.zeros(2, np.float32)])
    images = rng.normal(0, 0.1, size=(4, 16, 16, 1)).astype("float32")
    images[:, 2:6, 2:6] += 1.0
    before = GradCam(model, layer="features")(images, 1)
    assert before[:, 2:6, 2:6].mean() > 3 * before[:, 10:, 10:].mean()  # the blob is found
    keras.utils.set_random_seed(4)
    for layer in (model.get_layer("features"), model.get_layer("logits")):
        layer.set_weights([np.random.normal(0, 0.5, w.shape).astype(np.float32) for w in layer.get_weights()])
    after = GradCam(model, layer="features")(images, 1)
    correlation = np.mean([spearmanr(b.ravel(), a.ravel())[0] for b, a in zip(before, after)])
    assert correlation < 0.5


def test_make_explainer_gives_a_default_layer_only_to_methods_that_take_one(hand_model):
    from tfxmed.explain import make_explainer

    assert make_explainer("gradcam", hand_model, default_layer="features").layer == "features"
    assert make_explainer("ig", hand_model, default_layer="features", steps=4) is not None  # IG has no layer
    with pytest.raises(TypeError):  # an explicit layer is still strict
        make_explainer("ig", hand_model, layer="features")


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
