"""Integrated gradients: completeness, exactness on a linear model, bounded internal batches, quadrature."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.explain.references import smooth_model
from tfxmed.explain import IntegratedGradients
from tfxmed.explain.integrated_gradients import path_weights


@pytest.mark.parametrize("baseline", ["zero", "blurred"])
def test_integrated_gradients_completeness_at_64_steps(baseline, rng):
    model = smooth_model()
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
    model = smooth_model()
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


def test_smoothing_blurs_the_summed_map_and_leaves_attributions_alone(rng):
    inputs = keras.Input((12, 12, 1))
    model = keras.Model(inputs, keras.layers.Dense(2, name="logits")(keras.layers.Flatten()(inputs)))
    images = rng.normal(size=(2, 12, 12, 1)).astype("float32")
    plain = IntegratedGradients(model, steps=3)(images, 1)
    smoothed = IntegratedGradients(model, steps=3, smoothing_sigma=1.5)
    maps = smoothed(images, 1)
    # a linear model's IG is x ⊙ w; blurred with a normalised kernel: same total, lower peaks, no longer x ⊙ w
    np.testing.assert_allclose(maps.sum((1, 2)), plain.sum((1, 2)), rtol=0.2, atol=0.5)
    assert np.all(np.abs(maps).max((1, 2)) < np.abs(plain).max((1, 2)))
    np.testing.assert_allclose(smoothed.attributions(images, 1)[..., 0], plain, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="smoothing_sigma"):
        IntegratedGradients(model, smoothing_sigma=-1.0)
