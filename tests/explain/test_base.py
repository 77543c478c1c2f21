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


# XLA (issue 17 §2): every in-graph explainer compiles with jit_compile=True, as a TPU needs, and gives the
# maps of the uncompiled graph; host-side methods are refused by name. SmoothGrad is compared without noise:
# XLA's stateless generators are not TensorFlow's kernels, so under XLA the same seed draws other noise
# (even with alg="philox"; still deterministic).
XLA_OPTIONS = {
    "ig": {"steps": 4}, "smoothgrad": {"samples": 2, "noise_level": 0.0}, "occlusion": {"patch": 8, "stride": 8},
    "fusion": {"weights": {"gradcam": 0.4, "ig": 0.4}, "options": {"ig": {"steps": 4}}},
}
IN_GRAPH = ("gradcam", "gradcampp", "xgradcam", "layercam", "hirescam", "eigencam", "eigengradcam", "scorecam",
            "saliency", "smoothgrad", "ig", "occlusion", "lrp", "rollout", "fusion")


def _must_compile(function, *args) -> bool:
    """Whether a tf.function's graph is marked for XLA: `jit_compile=True`, which fails loudly when XLA
    cannot compile the graph instead of running it uncompiled."""
    return function.get_concrete_function(*args).function_def.attr["_XlaMustCompile"].b


@pytest.fixture(scope="module")
def chain_model():
    """The tiny model without attention: a chain of layers, which LRP supports."""
    from tfxmed.models.small_cnn import small_cnn

    keras.utils.set_random_seed(0)
    return small_cnn((32, 32, 1), 2, width=8)


# The slowest XLA compiles on CPU (5-15 s each on a shared 2-core machine) are marked slow; CI runs them all.
SLOW_XLA = ("eigencam", "eigengradcam", "lrp", "occlusion", "fusion")


@pytest.mark.parametrize("method", [pytest.param(m, marks=pytest.mark.slow) if m in SLOW_XLA else m for m in IN_GRAPH])
def test_in_graph_explainers_compile_with_xla_and_match(method, tiny_model, chain_model, rng):
    from tfxmed.explain import METHODS, make_explainer
    from tfxmed.models.vit import vit

    model = chain_model if method == "lrp" else tiny_model
    if method == "rollout":  # attention models only
        keras.utils.set_random_seed(0)
        model = vit((32, 32, 1), 2, size="ti", depth=2, patch_size=8)
    images = rng.random((3, 32, 32, 1)).astype(np.float32)
    targets = np.array([0, 1, 1])
    compiled = make_explainer(method, model, batch_size=8, jit_compile=True, **XLA_OPTIONS.get(method, {}))
    plain = make_explainer(method, model, batch_size=8, **XLA_OPTIONS.get(method, {}))
    weights = target_weights(targets, 2, 3)
    assert compiled.jit_compile and _must_compile(compiled.compiled_batch, images, weights)
    assert not _must_compile(plain.compiled_batch, images, weights)
    expected, got = plain(images, targets), compiled(images, targets)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5 * max(1e-6, float(np.abs(expected).max())))
    assert set(IN_GRAPH) == {name for name, m in METHODS.items() if name == "fusion" or m.in_graph}


@pytest.mark.parametrize("method", ["lime", "kernelshap"])
def test_host_side_methods_are_refused_under_xla_by_name(method, tiny_model):
    from tfxmed.explain import make_explainer

    with pytest.raises(ValueError, match=f"explanation method '{method}' fits a surrogate per image on the host"):
        make_explainer(method, tiny_model, jit_compile=True)
    with pytest.raises(ValueError, match="explanation method 'lime' fits a surrogate"):
        make_explainer("fusion", tiny_model, jit_compile=True)  # the design's fusion includes LIME
    with pytest.raises(ValueError, match="explanation method 'Lime' fits a surrogate"):
        make_explainer("lime", tiny_model).with_jit_compile()
