import keras
import numpy as np
import pytest

from tfxmed.explain.lrp import LayerwiseRelevancePropagation
from tfxmed.models.resnet_attention import resnet_attention


def _chain_cnn(bias=False, seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input((8, 8, 1)),
        keras.layers.Conv2D(4, 3, padding="same", activation="relu", use_bias=bias),
        keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(6, 3, padding="same", use_bias=bias),
        keras.layers.BatchNormalization(center=False, scale=False, epsilon=0.0),
        keras.layers.ReLU(),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(2, use_bias=bias, name="logits"),
        keras.layers.Activation("softmax"),
    ])


@pytest.mark.parametrize("rule", ["epsilon", "alpha_beta"])
def test_relevance_is_conserved_without_biases(rule, rng):
    model = _chain_cnn()
    images = rng.normal(size=(3, 8, 8, 1)).astype("float32")
    logits = keras.Model(model.inputs[0], model.get_layer("logits").output).predict(images, verbose=0)
    maps = LayerwiseRelevancePropagation(model, rule=rule, epsilon=1e-9)(images, 1)
    np.testing.assert_allclose(maps.reshape(3, -1).sum(-1), logits[:, 1], rtol=1e-3, atol=1e-5)


def test_epsilon_rule_on_a_linear_model_is_gradient_times_input(rng):
    keras.utils.set_random_seed(1)
    model = keras.Sequential([
        keras.Input((4, 4, 1)),
        keras.layers.Flatten(),
        keras.layers.Dense(3, use_bias=False, name="logits"),
    ])
    images = rng.normal(size=(2, 4, 4, 1)).astype("float32")
    kernel = model.get_layer("logits").get_weights()[0][:, 2].reshape(4, 4)
    maps = LayerwiseRelevancePropagation(model, epsilon=1e-12)(images, 2)
    np.testing.assert_allclose(maps, images[..., 0] * kernel, rtol=1e-4, atol=1e-6)


def test_alpha_beta_differs_from_epsilon_and_checks_its_parameters(rng):
    model = _chain_cnn(bias=True)
    images = rng.normal(size=(2, 8, 8, 1)).astype("float32")
    epsilon = LayerwiseRelevancePropagation(model)(images, 0)
    alpha_beta = LayerwiseRelevancePropagation(model, rule="alpha_beta", alpha=2.0, beta=1.0)(images, 0)
    assert not np.allclose(epsilon, alpha_beta)
    with pytest.raises(ValueError, match="alpha - beta = 1"):
        LayerwiseRelevancePropagation(model, rule="alpha_beta", alpha=2.0, beta=0.0)


def test_unsupported_architectures_are_refused_by_name():
    with pytest.raises(ValueError, match="LRP .*(residual|does not support)"):
        LayerwiseRelevancePropagation(resnet_attention((32, 32, 1), 2, blocks=(1, 1, 1, 1), width=4))
    tanh = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(), keras.layers.Dense(2, activation="tanh"),
                             keras.layers.Dense(2, name="logits")])
    with pytest.raises(ValueError, match="uses tanh"):
        LayerwiseRelevancePropagation(tanh)
