import keras
import numpy as np
import pytest

from tfxmed.explain import GradCam, target_weights
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


def test_target_forms():
    assert target_weights(1, 3, 2).tolist() == [[0, 1, 0], [0, 1, 0]]
    assert target_weights([2, 0], 3, 2).tolist() == [[0, 0, 1], [1, 0, 0]]
    multi_hot = np.array([[1, 0, 1], [0, 1, 0]], np.float32)
    np.testing.assert_array_equal(target_weights(multi_hot, 3, 2), multi_hot)
    with pytest.raises(ValueError, match=r"in \[0, 3\)"):
        target_weights([3, 0], 3, 2)
    with pytest.raises(ValueError, match="entries for 2 images"):
        target_weights([1], 3, 2)


def test_missing_layer_is_named():
    with pytest.raises(ValueError, match="no layer named 'nope'"):
        GradCam(_hand_built_model(), layer="nope")
