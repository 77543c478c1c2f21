"""Explaining in bfloat16: a view sharing the model's variables, float32 maps, close to float32 ones."""

import keras
import numpy as np
import pytest

from tests.explain.references import activations_and_gradients
from tfxmed.config import ModelConfig, SmallCnnConfig
from tfxmed.explain import METHODS, GradCam, IntegratedGradients, make_explainer
from tfxmed.explain.precision import compute_in
from tfxmed.models import build_model


def _relative_gap(reference, other):
    return float(np.abs(reference - other).max() / max(np.abs(reference).max(), 1e-12))


@pytest.fixture(scope="module")
def small_cnn():
    keras.utils.set_random_seed(3)
    config = ModelConfig(name="small_cnn", attention=True, small_cnn=SmallCnnConfig(width=8, blocks=[1, 1]))
    return build_model(config, (32, 32, 1), 2, False)


def test_view_computes_in_bfloat16_and_shares_variables(small_cnn):
    view = compute_in(small_cnn, "bfloat16")
    assert view.get_layer("csam").output.dtype == "bfloat16"
    assert small_cnn.get_layer("csam").output.dtype == "float32"  # the model itself is untouched
    assert {id(v) for v in view.weights} == {id(v) for v in small_cnn.weights}
    images = np.random.default_rng(0).normal(size=(4, 32, 32, 1)).astype("float32")
    reference = small_cnn(images, training=False).numpy()
    low = np.asarray(view(images, training=False), np.float32)
    assert 0 < _relative_gap(reference, low) < 0.05  # bfloat16 keeps ~3 significant digits
    dense = small_cnn.get_layer("logits")
    kernel = dense.kernel.numpy()
    dense.kernel.assign(kernel * 2.0)
    try:
        reference = small_cnn(images, training=False).numpy()
        assert _relative_gap(reference, np.asarray(view(images, training=False), np.float32)) < 0.05
    finally:
        dense.kernel.assign(kernel)
    assert compute_in(small_cnn, "float32") is small_cnn


def test_grad_cam_in_bfloat16_matches_the_hand_computed_map(hand_model, rng):
    images = rng.normal(size=(3, 4, 4, 1)).astype("float32")
    grad_cam = GradCam(hand_model, layer="features", upsample_to_input=False, normalize=False, precision="bfloat16")
    maps = grad_cam(images, 1)
    activations, gradients = activations_and_gradients(images, 1)
    expected = np.maximum((gradients.mean(axis=(1, 2), keepdims=True) * activations).sum(-1), 0)
    assert maps.dtype == np.float32 and expected.max() > 0
    np.testing.assert_allclose(maps, expected, atol=0.02 * expected.max())


def test_integrated_gradients_in_bfloat16_stays_close_to_float32(small_cnn):
    images = np.random.default_rng(1).normal(size=(2, 32, 32, 1)).astype("float32")
    full = IntegratedGradients(small_cnn, steps=16, batch_size=8)
    low = IntegratedGradients(small_cnn, steps=16, batch_size=8, precision="bfloat16")
    reference, maps = full(images, 1), low(images, 1)
    assert maps.dtype == np.float32
    assert np.corrcoef(reference.ravel(), maps.ravel())[0, 1] > 0.98
    assert np.all(low.completeness_error(images, 1) < 0.1)


def test_mixed_precision_models_are_explained_in_float32_outputs():
    keras.utils.set_random_seed(4)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        config = ModelConfig(name="small_cnn", small_cnn=SmallCnnConfig(width=8, blocks=[1, 1]))
        mixed = build_model(config, (16, 16, 1), 2, False)
    finally:
        keras.config.set_dtype_policy(previous)
    images = np.random.default_rng(2).normal(size=(2, 16, 16, 1)).astype("float32")
    for method in ("gradcam", "ig", "occlusion"):
        maps = make_explainer(method, mixed, batch_size=8)(images, 0)
        assert maps.dtype == np.float32 and maps.shape == (2, 16, 16) and np.isfinite(maps).all()


class _Float32Only(keras.layers.Layer):
    """A layer that is not mixed-precision safe: it multiplies by a float32 constant."""

    def call(self, inputs):
        return inputs * keras.ops.ones((4, 4, 1), dtype="float32")


def test_precision_is_validated():
    model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(), keras.layers.Dense(2, name="logits")])
    with pytest.raises(ValueError, match="precision must be one of"):
        compute_in(model, "int8")
    with pytest.raises(ValueError, match="'lrp' computes in float32 only"):
        make_explainer("lrp", model, precision="bfloat16")
    inputs = keras.Input((4, 4, 1))
    unsafe = _Float32Only(name="unsafe")(inputs)
    logits = keras.layers.Dense(2, name="logits")(keras.layers.Flatten()(unsafe))
    with pytest.raises(TypeError, match="layer 'unsafe' .* cannot compute in bfloat16"):
        make_explainer("saliency", keras.Model(inputs, logits), precision="bfloat16")
    maps = make_explainer("saliency", model, precision="bfloat16")(np.ones((1, 4, 4, 1), np.float32), 0)
    assert maps.shape == (1, 4, 4) and maps.max() > 0


FAST = {"lime": {"samples": 16}, "kernelshap": {"samples": 16}, "ig": {"steps": 4}, "smoothgrad": {"samples": 2},
        "occlusion": {"patch": 8, "stride": 8}, "fusion": {"options": {"ig": {"steps": 4}, "lime": {"samples": 16}}}}


@pytest.mark.parametrize("method", [name for name in METHODS if name != "lrp"])
def test_every_method_runs_in_bfloat16(small_cnn, method):
    images = np.random.default_rng(5).normal(size=(2, 32, 32, 1)).astype("float32")
    model = small_cnn
    if method == "rollout":  # attention models only
        from tfxmed.models.vit import vit

        model = vit((32, 32, 1), 2, size="ti", depth=2, patch_size=8)
    maps = make_explainer(method, model, batch_size=8, precision="bfloat16", **FAST.get(method, {}))(images, 1)
    assert maps.dtype == np.float32 and maps.shape == (2, 32, 32) and np.isfinite(maps).all()


def test_shared_layers_and_quantized_layers_in_a_bfloat16_view():
    inputs = keras.Input((8, 8, 1))
    relu = keras.layers.ReLU(name="shared_relu")
    x = relu(keras.layers.Conv2D(4, 3, padding="same")(inputs))
    x = relu(keras.layers.Conv2D(4, 3, padding="same")(x))
    x = keras.layers.Dense(6, name="quantized")(keras.layers.Flatten()(x))
    model = keras.Model(inputs, keras.layers.Dense(2, name="logits")(x))
    model.get_layer("quantized").quantize("int8")
    view = compute_in(model, "bfloat16")
    assert view.get_layer("quantized") is model.get_layer("quantized")  # left as it is, int8 kernels and all
    images = np.random.default_rng(9).normal(size=(2, 8, 8, 1)).astype("float32")
    assert _relative_gap(model(images).numpy(), np.asarray(view(images), np.float32)) < 0.05


def test_float32_precision_is_accepted_by_every_method():
    model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(), keras.layers.Dense(2, name="logits")])
    maps = make_explainer("lrp", model, precision="float32")(np.ones((1, 4, 4, 1), np.float32), 0)
    assert maps.shape == (1, 4, 4)
