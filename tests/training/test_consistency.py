import keras
import numpy as np
import pytest
import tensorflow as tf

from tfxmed.explain import GradCam, IntegratedGradients
from tfxmed.models.small_cnn import small_cnn
from tfxmed.training.consistency import ExplanationConsistencyModel


@pytest.fixture
def classifier():
    keras.utils.set_random_seed(0)
    return small_cnn((32, 32, 1), 2, attention=True, width=4, blocks=(1, 1, 1))


@pytest.fixture
def batch():
    rng = np.random.default_rng(0)
    images = rng.random((4, 32, 32, 1)).astype("float32")
    labels = np.eye(2, dtype="float32")[[1, 0, 1, 1]]
    return images, labels


def _minmax(maps):
    low, high = maps.min((1, 2), keepdims=True), maps.max((1, 2), keepdims=True)
    return np.where(high > low, (maps - low) / np.where(high > low, high - low, 1), 0)


@pytest.mark.parametrize("baseline", ["zero", "blurred"])
def test_loss_equals_a_reference_built_from_the_explainers(classifier, batch, baseline):
    images, labels = batch
    model = ExplanationConsistencyModel(classifier, layer="csam", ig_steps=4, ig_fraction=0.5, ig_baseline=baseline,
                                        ig_blur_sigma=1.5)
    cam, _ = model.gradcam(tf.constant(images), tf.constant(labels), training=False)
    loss = float(model.consistency_loss(tf.constant(images), tf.constant(labels), cam))

    # Reference: the explanation engine's Grad-CAM and IG (4 trapezoid steps, the same baseline) on the
    # first half of the batch, IG's positive channel sum averaged onto the 8 × 8 grid, min-max, L1.
    reference_cam = GradCam(classifier, layer="csam", upsample_to_input=False, normalize=False)(images[:2], labels[:2])
    explainer = IntegratedGradients(classifier, steps=4, rule="trapezoid", baseline=baseline, blur_sigma=1.5)
    attributions = explainer.attributions(images[:2], labels[:2])
    ig = np.maximum(attributions.sum(-1), 0).reshape(2, 8, 4, 8, 4).mean((2, 4))
    expected = np.abs(_minmax(reference_cam) - _minmax(ig)).mean()
    np.testing.assert_allclose(cam.numpy()[:2], reference_cam, rtol=1e-4, atol=1e-7)
    assert loss == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize("ig_gradient", [False, True])
def test_gradients_reach_every_weight_through_the_consistency_term(classifier, batch, ig_gradient):
    images, labels = batch
    model = ExplanationConsistencyModel(classifier, layer="csam", ig_steps=2, ig_fraction=1.0, ig_gradient=ig_gradient)
    with tf.GradientTape() as tape:
        cam, _ = model.gradcam(tf.constant(images), tf.constant(labels), training=True)
        loss = model.consistency_loss(tf.constant(images), tf.constant(labels), cam)
    gradients = tape.gradient(loss, classifier.trainable_weights)
    # d score / dA does not depend on the logits bias, so neither does the Grad-CAM map.
    missing = [w.path for w, g in zip(classifier.trainable_weights, gradients)
               if "logits/bias" not in w.path and (g is None or not np.any(g.numpy()))]
    assert not missing


def test_consistency_term_alone_decreases_on_a_fixed_batch(classifier, batch):
    images, labels = tf.constant(batch[0]), tf.constant(batch[1])
    model = ExplanationConsistencyModel(classifier, layer="csam", ig_steps=2, ig_fraction=1.0)
    optimizer = keras.optimizers.Adam(3e-3)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            cam, _ = model.gradcam(images, labels, training=False)
            loss = model.consistency_loss(images, labels, cam)
        optimizer.apply_gradients(zip(tape.gradient(loss, classifier.trainable_weights), classifier.trainable_weights))
        return loss

    losses = [float(step()) for _ in range(30)]
    assert losses[-1] < 0.7 * losses[0], losses


def test_fit_logs_both_losses_and_every_k_steps_skips_the_term(classifier, batch):
    images, labels = batch
    data = tf.data.Dataset.from_tensor_slices(
        (np.repeat(images, 4, 0), np.repeat(labels, 4, 0))).batch(4, drop_remainder=True)
    model = ExplanationConsistencyModel(classifier, layer="csam", ig_steps=2, every=2)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=keras.losses.CategoricalCrossentropy(),
                  metrics=[keras.metrics.AUC(name="auc")])
    before = [w.numpy().copy() for w in classifier.trainable_weights]
    history = model.fit(data, epochs=1, verbose=0, validation_data=data)
    logs = history.history
    assert {"loss", "cls_loss", "exp_loss", "auc", "val_loss", "val_auc"} <= set(logs)
    assert "val_exp_loss" not in logs
    # The term is on (steps 0 and 2 of 4) and the logged total is L_cls + α·L_exp.
    assert 0 < logs["exp_loss"][0]
    assert logs["loss"][0] == pytest.approx(logs["cls_loss"][0] + 0.2 * logs["exp_loss"][0], rel=1e-4)
    assert any(not np.allclose(a, w.numpy()) for a, w in zip(before, classifier.trainable_weights))


def test_bad_options_are_named(classifier):
    with pytest.raises(ValueError, match="l1, l2, cosine"):
        ExplanationConsistencyModel(classifier, distance="kl")
    with pytest.raises(ValueError, match="ig_fraction"):
        ExplanationConsistencyModel(classifier, ig_fraction=0.0)
    with pytest.raises(ValueError, match="zero, blurred .* got 'noise'"):
        ExplanationConsistencyModel(classifier, ig_baseline="noise")


def test_multi_label_head_explains_the_positive_labels():
    keras.utils.set_random_seed(1)
    classifier = small_cnn((32, 32, 1), 3, multi_label=True, attention=True, width=4, blocks=(1, 1, 1))
    images = np.random.default_rng(1).random((4, 32, 32, 1)).astype("float32")
    labels = np.array([[1, 0, 1], [0, 0, 0], [0, 1, 0], [1, 1, 1]], "float32")
    model = ExplanationConsistencyModel(classifier, layer="csam", ig_steps=2, ig_fraction=1.0)
    cam, _ = model.gradcam(tf.constant(images), tf.constant(labels), training=False)
    # Several positives: the map of their summed logits, as the explanation engine computes it.
    reference = GradCam(classifier, layer="csam", upsample_to_input=False, normalize=False)(images, labels)
    np.testing.assert_allclose(cam.numpy(), reference, rtol=1e-4, atol=1e-7)
    assert not np.any(cam.numpy()[1])  # no positive label: nothing to explain
    model.compile(optimizer="adam", loss=keras.losses.BinaryCrossentropy())
    logs = model.train_on_batch(images, labels, return_dict=True)
    assert np.isfinite(logs["loss"]) and logs["exp_loss"] >= 0


def test_step_runs_under_mixed_precision():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        keras.utils.set_random_seed(2)
        classifier = small_cnn((32, 32, 1), 2, attention=True, width=4, blocks=(1, 1, 1))
        model = ExplanationConsistencyModel(classifier, layer="csam", ig_steps=2)
        model.compile(optimizer="adam", loss=keras.losses.CategoricalCrossentropy())
        images = np.random.default_rng(2).random((8, 32, 32, 1)).astype("float32")
        logs = model.train_on_batch(images, np.eye(2, dtype="float32")[[0, 1] * 4], return_dict=True)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert np.isfinite(logs["loss"]) and np.isfinite(logs["exp_loss"])
