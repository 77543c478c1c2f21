"""A hand-built model whose gradients are known in closed form, shared by the explainer tests."""

import keras
import numpy as np
import pytest

from tfxmed.models import ModelSpec, declare_spec

SPATIAL = np.array([[1.0, 2.0, 0.5, 1.0], [0.0, 1.5, 1.0, 2.0], [1.0, 0.5, 3.0, 1.0], [2.0, 1.0, 0.5, 0.0]], np.float32)
LOGIT_WEIGHTS = np.array([[2.0, -1.0], [0.5, 3.0]], np.float32)


@keras.saving.register_keras_serializable(package="tests")
class SpatialWeighting(keras.layers.Layer):
    """Multiplies a [n, 4, 4, C] feature map by the fixed map SPATIAL (makes gradients position-dependent)."""

    def call(self, inputs):
        return inputs * keras.ops.convert_to_tensor(SPATIAL, dtype=inputs.dtype)[None, :, :, None]


def hand_built_model():
    """x → 1x1 conv [1, −1] + ReLU (`features`) → ⊙ SPATIAL → GAP → Dense W (`logits`) → softmax.

    It declares its layers as tfxmed's own models do (`ModelSpec`), so explainers read them.

    ∂ logit_c / ∂ A_k(i, j) = W[k, c] · SPATIAL[i, j] / 16 exactly.
    """
    inputs = keras.Input((4, 4, 1))
    features = keras.layers.Conv2D(2, 1, use_bias=False, activation="relu", name="features")(inputs)
    pooled = keras.layers.GlobalAveragePooling2D()(SpatialWeighting()(features))
    logits = keras.layers.Dense(2, use_bias=False, name="logits")(pooled)
    model = keras.Model(inputs, keras.layers.Activation("softmax", name="probabilities")(logits))
    model.get_layer("features").set_weights([np.array([1.0, -1.0], np.float32).reshape(1, 1, 1, 2)])
    model.get_layer("logits").set_weights([LOGIT_WEIGHTS])
    return declare_spec(model, ModelSpec(explain_layer="features", logits_layer="logits"))


def activations_and_gradients(images, target):
    """Closed-form A [n, 4, 4, 2] and ∂ logit_target / ∂ A."""
    activations = np.stack([np.maximum(images[..., 0], 0), np.maximum(-images[..., 0], 0)], axis=-1)
    gradients = np.broadcast_to(LOGIT_WEIGHTS[:, target] * SPATIAL[..., None] / 16.0, activations.shape)
    return activations, gradients


@pytest.fixture
def hand_model():
    return hand_built_model()
