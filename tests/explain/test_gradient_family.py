import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.explain.conftest import LOGIT_WEIGHTS, SPATIAL
from tfxmed.explain import IntegratedGradients, Saliency, SmoothGrad
from tfxmed.explain.integrated_gradients import path_weights


def _smooth_model(input_shape=(8, 8, 1), seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(input_shape)
    conv = keras.layers.Conv2D if len(input_shape) == 3 else keras.layers.Conv3D
    x = conv(4, 3, padding="same", activation="tanh")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x) if len(input_shape) == 3 else keras.layers.GlobalAveragePooling3D()(x)
    logits = keras.layers.Dense(3, name="logits")(x)
    return keras.Model(inputs, keras.layers.Activation("softmax")(logits))


def test_saliency_equals_closed_form_gradient(hand_model, rng):
    images = rng.normal(size=(3, 4, 4, 1)).astype("float32")
    maps = Saliency(hand_model)(images, 1)
    x = images[..., 0]
    gradient = (LOGIT_WEIGHTS[0, 1] * (x > 0) - LOGIT_WEIGHTS[1, 1] * (x < 0)) * SPATIAL / 16.0
    np.testing.assert_allclose(maps, np.abs(gradient), rtol=1e-5, atol=1e-7)


def test_smooth_grad_without_noise_is_saliency_and_is_seeded(hand_model, rng):
    images = rng.normal(size=(2, 4, 4, 1)).astype("float32")
    np.testing.assert_allclose(
        SmoothGrad(hand_model, samples=3, noise_level=0.0)(images, 0), Saliency(hand_model)(images, 0), rtol=1e-5)
    noisy = SmoothGrad(hand_model, samples=4, noise_level=0.3, seed=5)
    np.testing.assert_allclose(noisy(images, 0), noisy(images, 0))
    assert not np.allclose(noisy(images, 0), Saliency(hand_model)(images, 0))


@pytest.mark.parametrize("baseline", ["zero", "blurred"])
def test_integrated_gradients_completeness_at_64_steps(baseline, rng):
    model = _smooth_model()
    images = rng.normal(size=(4, 8, 8, 1)).astype("float32")
    explainer = IntegratedGradients(model, steps=64, baseline=baseline, blur_sigma=2.0)
    errors = explainer.completeness_error(images, [0, 1, 2, 0])
    assert np.all(errors < 0.02), errors


def test_integrated_gradients_is_exact_for_a_linear_model(rng):
    inputs = keras.Input((5, 5, 1))
    logits = keras.layers.Dense(2, name="logits")(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, logits)
    images = rng.normal(size=(2, 5, 5, 1)).astype("float32")
    kernel = model.get_layer("logits").get_weights()[0][:, 1].reshape(5, 5)
    for rule in ("trapezoid", "left", "right", "middle"):
        maps = IntegratedGradients(model, steps=3, rule=rule)(images, 1)
        np.testing.assert_allclose(maps, images[..., 0] * kernel, rtol=1e-5, atol=1e-6)


def test_integrated_gradients_bounds_internal_batches(rng):
    model = _smooth_model()
    explainer = IntegratedGradients(model, steps=20, batch_size=8)
    seen = []
    original = explainer.input_gradients

    def spy(images, targets):
        if tf.executing_eagerly():
            seen.append(int(images.shape[0]))
        return original(images, targets)

    explainer.input_gradients = spy
    images = tf.constant(rng.normal(size=(3, 8, 8, 1)).astype("float32"))
    weights = tf.one_hot([0, 1, 2], 3)
    eager = explainer.integrated_gradients(images, weights)
    assert max(seen) <= 8 and sum(seen) == 3 * 21  # every alpha of the trapezoid visited once
    np.testing.assert_allclose(eager.numpy(), explainer.attributions(images.numpy(), [0, 1, 2]), rtol=1e-4, atol=1e-6)


def test_quadrature_weights():
    alphas, weights = path_weights(4, "trapezoid")
    np.testing.assert_allclose(alphas, [0, 0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(weights, [0.125, 0.25, 0.25, 0.25, 0.125])
    with pytest.raises(ValueError, match="trapezoid, left, right, middle"):
        path_weights(4, "simpson")


def test_gradient_methods_on_3d_volumes(rng):
    model = _smooth_model((4, 6, 6, 1))
    volumes = rng.normal(size=(2, 4, 6, 6, 1)).astype("float32")
    maps = Saliency(model)(volumes, 1)
    assert maps.shape == (2, 4, 6, 6)
    assert np.all(IntegratedGradients(model, steps=64).completeness_error(volumes, 1) < 0.02)


def test_batch_invariance(rng):
    model = _smooth_model()
    images = rng.normal(size=(5, 8, 8, 1)).astype("float32")
    for explainer_type in (Saliency, IntegratedGradients):
        together = explainer_type(model, batch_size=5)(images, 2)
        alone = np.concatenate([explainer_type(model, batch_size=1)(images[i : i + 1], 2) for i in range(5)])
        np.testing.assert_allclose(together, alone, rtol=1e-4, atol=1e-6)
