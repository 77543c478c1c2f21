"""The pipeline every explainer shares (`tfxmed.explain.base`): target forms (index, per-image, multi-hot)
and any number of spatial dimensions."""

import keras
import numpy as np
import pytest

from tests.explain.references import activations_and_gradients
from tfxmed.explain import GradCam, HiResCam, IntegratedGradients, target_weights


def test_target_forms():
    assert target_weights(1, 3, 2).tolist() == [[0, 1, 0], [0, 1, 0]]
    assert target_weights([2, 0], 3, 2).tolist() == [[0, 0, 1], [1, 0, 0]]
    multi_hot = np.array([[1, 0, 1], [0, 1, 0]], np.float32)
    np.testing.assert_array_equal(target_weights(multi_hot, 3, 2), multi_hot)
    with pytest.raises(ValueError, match=r"in \[0, 3\)"):
        target_weights([3, 0], 3, 2)
    with pytest.raises(ValueError, match="entries for 2 images"):
        target_weights([1], 3, 2)


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
