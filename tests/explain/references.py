"""NumPy references the explainer tests share: a hand-built model whose gradients are known in closed form,
its activations and gradients, the CAM combination, and small models with known answers.

Fixtures that build these live in tests/explain/conftest.py; test files import the helpers from here.
"""

from __future__ import annotations

import keras
import numpy as np

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


def relu(x):
    return np.maximum(x, 0)


def combine(weights, activations):
    """The CAM map ReLU(Σ_k w_k A_k) for weights broadcastable to the activations."""
    return relu((weights * activations).sum(-1))


def cam_and_formula(method, formula, model, rng, target):
    """(`method`'s maps on the hand-built `model`, `formula(activations, gradients)` computed in NumPy)."""
    images = rng.normal(size=(3, 4, 4, 1)).astype("float32")
    maps = method(model, layer="features", upsample_to_input=False, normalize=False)(images, target)
    activations, gradients = activations_and_gradients(images, target)
    return maps, formula(activations, gradients)


def smooth_model(input_shape=(8, 8, 1), seed=0):
    """conv (tanh) → GAP → Dense `logits` (3 classes) → softmax, in 2-D or 3-D: smooth, so IG converges."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(input_shape)
    conv = keras.layers.Conv2D if len(input_shape) == 3 else keras.layers.Conv3D
    x = conv(4, 3, padding="same", activation="tanh")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x) if len(input_shape) == 3 else keras.layers.GlobalAveragePooling3D()(x)
    logits = keras.layers.Dense(3, name="logits")(x)
    return keras.Model(inputs, keras.layers.Activation("softmax")(logits))


def linear_model(size=8, seed=0):
    """Flatten → Dense `logits` (2 classes): every pixel's contribution to a logit is known exactly."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((size, size, 1))
    logits = keras.layers.Dense(2, name="logits")(keras.layers.Flatten()(inputs))
    return keras.Model(inputs, logits)
