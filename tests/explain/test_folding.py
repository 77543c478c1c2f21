"""Batch-normalisation folding: the same function and gradients, live weights, what is left alone."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfxmed.config import ModelConfig
from tfxmed.explain.folding import FoldedBatchNormalization, fold_batch_normalization
from tfxmed.explain.grad_cam import GradCam
from tfxmed.models import build_model
from tfxmed.models.keras_internals import flatten_layers


def _randomise_statistics(model, seed=0):
    """Non-trivial moving statistics, γ and β, so that folding has something to get wrong."""
    rng = np.random.default_rng(seed)
    for layer in _all_layers(model):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_mean.assign(rng.normal(0.0, 0.2, layer.moving_mean.shape))
            layer.moving_variance.assign(rng.uniform(0.3, 3.0, layer.moving_variance.shape))
            layer.gamma.assign(rng.uniform(0.5, 1.5, layer.gamma.shape))
            layer.beta.assign(rng.normal(0.0, 0.2, layer.beta.shape))


def _all_layers(model):
    """Every layer, inside nested models and wrappers (e.g. a bfloat16 view's) too."""
    return flatten_layers(model, include_self=False)


def _count(model, kind):
    return sum(isinstance(layer, kind) for layer in _all_layers(model))


def _unfolded_norms(model):
    """BatchNormalization layers still computed as such (each folded layer holds one, unused)."""
    return _count(model, keras.layers.BatchNormalization) - _count(model, FoldedBatchNormalization)


def _outputs_and_input_gradients(model, images):
    images = tf.constant(images)
    with tf.GradientTape() as tape:
        tape.watch(images)
        outputs = model(images, training=False)
        score = tf.reduce_sum(outputs[:, 0])
    return outputs.numpy(), tape.gradient(score, images).numpy()


def _close(first, second, rtol=2e-5):
    scale = max(float(np.abs(first).max()), 1e-6)
    return float(np.abs(first - second).max()) <= rtol * scale


@pytest.fixture(scope="module")
def resnet():
    keras.utils.set_random_seed(7)
    model = build_model(ModelConfig(), (32, 32, 1), 2, False)
    _randomise_statistics(model)
    return model


def test_resnet_folds_every_conv_batch_norm_pair_and_keeps_outputs_and_gradients(resnet):
    folded = fold_batch_normalization(resnet)
    norms = _count(resnet, keras.layers.BatchNormalization)
    assert norms > 40
    assert _unfolded_norms(folded) == 0
    assert _count(folded, FoldedBatchNormalization) == norms
    images = np.random.default_rng(1).normal(size=(3, 32, 32, 1)).astype("float32")
    (out, grad), (folded_out, folded_grad) = (_outputs_and_input_gradients(m, images) for m in (resnet, folded))
    assert _close(out, folded_out) and _close(grad, folded_grad, rtol=1e-4)
    assert np.abs(grad).max() > 0


def test_folded_model_reads_the_weights_live(resnet):
    model = keras.models.clone_model(resnet)
    model.set_weights(resnet.get_weights())
    folded = fold_batch_normalization(model)
    images = np.random.default_rng(2).normal(size=(2, 32, 32, 1)).astype("float32")
    before = folded(images, training=False).numpy()
    _randomise_statistics(model, seed=5)
    conv = next(layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D))
    conv.kernel.assign(conv.kernel.numpy() * 1.5)
    after = folded(images, training=False).numpy()
    assert not _close(before, after, rtol=1e-2)
    assert _close(model(images, training=False).numpy(), after)


def test_kept_layers_and_unsafe_pairs_are_left_alone():
    inputs = keras.Input((8, 8, 1))
    kept = keras.layers.Conv2D(4, 3, padding="same", name="kept")(inputs)
    x = keras.layers.BatchNormalization(name="kept_bn")(kept)
    activated = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="activated")(x)
    x = keras.layers.BatchNormalization(name="after_relu_bn")(activated)
    branched = keras.layers.Conv2D(4, 3, padding="same", name="branched")(x)
    x = keras.layers.Add()([keras.layers.BatchNormalization(name="branch_bn")(branched), branched])
    plain = keras.layers.Conv2D(4, 3, padding="same", name="plain")(x)
    x = keras.layers.BatchNormalization(name="plain_bn")(plain)
    outputs = keras.layers.Dense(2, name="logits")(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, outputs)
    _randomise_statistics(model)
    folded = fold_batch_normalization(model, keep=["kept"])
    names = {layer.name: type(layer).__name__ for layer in folded.layers}
    assert names["kept"] == "Conv2D" and names["kept_bn"] == "BatchNormalization"
    assert names["after_relu_bn"] == "BatchNormalization" and names["branch_bn"] == "BatchNormalization"
    assert names["plain_bn"] == "FoldedBatchNormalization" and "plain" not in names
    images = np.random.default_rng(3).normal(size=(2, 8, 8, 1)).astype("float32")
    assert _close(model(images, training=False).numpy(), folded(images, training=False).numpy())


def test_nested_and_sequential_models_are_folded():
    backbone_inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(4, 3, padding="same", name="inner_conv")(backbone_inputs)
    x = keras.layers.ReLU(name="inner_out")(keras.layers.BatchNormalization(name="inner_bn")(x))
    backbone = keras.Model(backbone_inputs, x, name="backbone")
    inputs = keras.Input((8, 8, 1))
    pooled = keras.layers.GlobalAveragePooling2D()(backbone(inputs))
    nested = keras.Model(inputs, keras.layers.Dense(2, name="logits")(pooled))
    sequential = keras.Sequential([
        keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3, padding="same"), keras.layers.BatchNormalization(),
        keras.layers.ReLU(), keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3),
        keras.layers.BatchNormalization(), keras.layers.Dense(2),
    ])
    images = np.random.default_rng(4).normal(size=(2, 8, 8, 1)).astype("float32")
    for model, pairs in ((nested, 1), (sequential, 2)):
        _randomise_statistics(model)
        folded = fold_batch_normalization(model)
        assert _unfolded_norms(folded) == 0
        assert _count(folded, FoldedBatchNormalization) == pairs
        assert _close(model(images, training=False).numpy(), folded(images, training=False).numpy())


class _UnfoldedGradCam(GradCam):
    fold_batch_norm = False


@pytest.mark.parametrize("layer", ["csam", "conv4_block1_1_conv"])
def test_grad_cam_is_unchanged_by_folding(resnet, layer):
    images = np.random.default_rng(5).normal(size=(4, 32, 32, 1)).astype("float32")
    folded = GradCam(resnet, layer=layer, normalize=False, upsample_to_input=False)
    unfolded = _UnfoldedGradCam(resnet, layer=layer, normalize=False, upsample_to_input=False)
    assert _count(folded.scores, FoldedBatchNormalization) > 0
    assert _count(unfolded.scores, FoldedBatchNormalization) == 0
    weights = tf.one_hot([0, 1, 0, 1], 2)
    (activations, gradients), (reference_activations, reference_gradients) = (
        explainer.feature_maps(tf.constant(images), weights) for explainer in (folded, unfolded))
    assert np.abs(reference_gradients.numpy()).max() > 0  # a ReLU may still empty the maps themselves
    assert _close(reference_activations.numpy(), activations.numpy())
    assert _close(reference_gradients.numpy(), gradients.numpy(), rtol=1e-4)
    assert _close(unfolded(images, [0, 1, 0, 1]), folded(images, [0, 1, 0, 1]), rtol=1e-4)


def _pairs_folded(model):
    return _count(fold_batch_normalization(model), FoldedBatchNormalization)


def test_causal_quantized_and_pinned_pairs_are_not_folded():
    images = np.random.default_rng(6).normal(size=(2, 8, 4)).astype("float32")
    inputs = keras.Input((8, 4))
    x = keras.layers.BatchNormalization(name="causal_bn")(keras.layers.Conv1D(4, 3, padding="causal")(inputs))
    x = keras.layers.BatchNormalization(name="pinned_bn")(keras.layers.Conv1D(4, 3, padding="same")(x), training=True)
    x = keras.layers.Flatten()(x)
    x = keras.layers.BatchNormalization(name="quantized_bn")(keras.layers.Dense(6, name="quantized")(x))
    model = keras.Model(inputs, keras.layers.Dense(2, name="logits")(x))
    _randomise_statistics(model)
    model.get_layer("quantized").quantize("int8")
    assert _pairs_folded(model) == 0
    folded = fold_batch_normalization(model)
    assert _close(model(images, training=False).numpy(), folded(images, training=False).numpy())


def test_a_nested_model_called_twice_is_folded_once():
    inner_inputs = keras.Input((8, 8, 1))
    inner = keras.layers.BatchNormalization()(keras.layers.Conv2D(3, 3, padding="same")(inner_inputs))
    block = keras.Model(inner_inputs, keras.layers.Conv2D(1, 1)(inner), name="block")
    inputs = keras.Input((8, 8, 1))
    x = block(block(inputs))
    model = keras.Model(inputs, keras.layers.Dense(2, name="logits")(keras.layers.Flatten()(x)))
    _randomise_statistics(model)
    folded = fold_batch_normalization(model)
    images = np.random.default_rng(7).normal(size=(2, 8, 8, 1)).astype("float32")
    assert _count(folded, FoldedBatchNormalization) == 1
    assert _close(model(images, training=False).numpy(), folded(images, training=False).numpy())


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_a_softmax_head_without_a_logits_layer_is_cut_before_folding(precision):
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.ReLU()(keras.layers.BatchNormalization()(keras.layers.Conv2D(4, 3, padding="same")(inputs)))
    pooled = keras.layers.GlobalAveragePooling2D()(x)
    head = keras.layers.Dense(2, activation="softmax", name="head")
    model = keras.Model(inputs, head(pooled))
    _randomise_statistics(model)
    with pytest.warns(UserWarning, match="ends in softmax"):
        explainer = GradCam(model, layer=model.layers[3].name, precision=precision)
    assert _count(explainer.scores, FoldedBatchNormalization) == 1
    images = np.random.default_rng(8).normal(size=(3, 8, 8, 1)).astype("float32")
    features = keras.Model(inputs, pooled)(images, training=False).numpy()
    expected = features @ head.kernel.numpy() + head.bias.numpy()  # pre-softmax scores
    assert _close(expected, explainer.predict_scores(images), rtol=2e-5 if precision == "float32" else 5e-2)


def test_no_targets_on_a_folded_resnet_explain_the_predicted_class(resnet):
    images = np.random.default_rng(9).normal(size=(4, 32, 32, 1)).astype("float32")
    explainer = GradCam(resnet, layer="conv4_block6_out", normalize=False)
    predicted = np.argmax(explainer.predict_scores(images), axis=-1)
    np.testing.assert_allclose(explainer(images), explainer(images, predicted), atol=1e-6)
