"""Grad-CAM: by hand on a GAP model, against its formula on the hand-built model, batched, and the
randomisation sanity check."""

import keras
import numpy as np
import pytest
from scipy.stats import spearmanr

from tests.explain.references import cam_and_formula, combine
from tfxmed.explain import GradCam
from tfxmed.models import ModelSpec, declare_spec


def _hand_built_model():
    """x → 1x1 conv with kernel [1, -1] and ReLU → GAP → Dense logits W → softmax."""
    inputs = keras.Input((4, 4, 1))
    features = keras.layers.Conv2D(2, 1, use_bias=False, activation="relu", name="features")(inputs)
    pooled = keras.layers.GlobalAveragePooling2D()(features)
    logits = keras.layers.Dense(2, use_bias=False, name="logits")(pooled)
    outputs = keras.layers.Activation("softmax", name="probabilities")(logits)
    model = keras.Model(inputs, outputs)
    model.get_layer("features").set_weights([np.array([1.0, -1.0]).reshape(1, 1, 1, 2)])
    model.get_layer("logits").set_weights([np.array([[2.0, -1.0], [0.5, 3.0]])])
    return declare_spec(model, ModelSpec(explain_layer="features"))


def test_grad_cam_equals_hand_computed_map(rng):
    model = _hand_built_model()
    images = rng.normal(size=(3, 4, 4, 1)).astype("float32")
    explainer = GradCam(model, layer="features", upsample_to_input=False, normalize=False)
    weights = np.array([[2.0, -1.0], [0.5, 3.0]])
    for target in (0, 1):
        maps = explainer(images, target)
        activations = np.stack([np.maximum(images[..., 0], 0), np.maximum(-images[..., 0], 0)], axis=-1)
        alpha = weights[:, target] / 16.0  # d logit / d A_k(i, j) = W[k, c] / (H W), averaged
        expected = np.maximum((activations * alpha).sum(-1), 0)
        np.testing.assert_allclose(maps, expected, rtol=1e-5, atol=1e-6)


def test_batch_invariance_and_per_sample_targets(rng):
    model = _hand_built_model()
    images = rng.normal(size=(5, 4, 4, 1)).astype("float32")
    targets = [0, 1, 1, 0, 1]
    together = GradCam(model, layer="features", batch_size=5)(images, targets)
    single = GradCam(model, layer="features", batch_size=1)
    one_by_one = np.concatenate([single(images[i : i + 1], [t]) for i, t in enumerate(targets)])
    np.testing.assert_allclose(together, one_by_one, rtol=1e-5, atol=1e-6)
    assert together.shape == (5, 4, 4)
    assert together.max() <= 1.0 + 1e-6  # normalised


def test_default_target_is_predicted_class(rng):
    model = _hand_built_model()
    images = rng.normal(size=(4, 4, 4, 1)).astype("float32")
    predicted = model.predict(images, verbose=0).argmax(-1)
    explainer = GradCam(model, layer="features")
    np.testing.assert_allclose(explainer(images), explainer(images, predicted), rtol=1e-6)


def test_upsampled_to_input_size():
    inputs = keras.Input((16, 16, 1))
    x = keras.layers.Conv2D(3, 3, strides=4, padding="same", name="features")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(2, name="logits")(x))
    maps = GradCam(model, layer="features")(np.random.rand(2, 16, 16, 1), 1)
    assert maps.shape == (2, 16, 16)


def test_missing_layer_is_named():
    with pytest.raises(ValueError, match="no layer named 'nope'"):
        GradCam(_hand_built_model(), layer="nope")


@pytest.mark.parametrize("target", [0, 1])
def test_grad_cam_matches_formula(target, hand_model, rng):
    grad_cam = lambda a, g: combine(g.mean(axis=(1, 2), keepdims=True), a)  # noqa: E731
    maps, expected = cam_and_formula(GradCam, grad_cam, hand_model, rng, target)
    np.testing.assert_allclose(maps, expected, rtol=1e-4, atol=1e-6)


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
