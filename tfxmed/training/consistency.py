"""Explanation-consistency training: L_total = L_cls + α · d(H_GradCAM, H_IG) inside the train step.

`ExplanationConsistencyModel` wraps a classifier and overrides `train_step`:

- Grad-CAM comes from the same forward pass as the classification loss. An inner GradientTape gives
  ∂score/∂A for the explained layer A; the outer tape differentiates through it (second order), so the
  consistency term trains every weight up to that layer. The target is the true class (multi-label:
  the sum of the positive labels' logits).
- Integrated Gradients (trapezoid rule, `ig_steps` intervals) is computed on the first
  `ig_fraction` of the per-replica batch, in inference mode (BatchNorm statistics untouched), from the
  zero image or, with `ig_baseline="blurred"`, from the image blurred at σ = `ig_blur_sigma` pixels
  (as `explain.IntegratedGradients`): that path adds back only the fine structure, so the target
  points at small findings rather than at the whole anatomy (docs/results.md). By default
  it is a *target*: `tf.stop_gradient`, so it costs `ig_steps + 1` forward-backward passes of that
  fraction and no second-order pass. `ig_gradient=True` is the naive variant that also differentiates
  through IG. `every=k` adds the term on every k-th step only (the step is a `tf.cond`: static shapes,
  no Python inside, so it runs under any strategy and on TPU).
- L_cls and L_exp are reported separately (`cls_loss`, `exp_loss`) to the History and TensorBoard.

The wrapper is what `fit` trains; save and serve `model.classifier` (same weights, plain Keras model).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from tfxmed.config_choices import IG_BASELINES
from tfxmed.explain.integrated_gradients import path_baselines, path_weights
from tfxmed.explain.ops import spatial_axes
from tfxmed.models.factory import layer_output, model_input
from tfxmed.models.keras_internals import loss_tracker
from tfxmed.models.spec import declared_spec
from tfxmed.training.losses import DISTANCES, explanation_consistency

__all__ = ["ExplanationConsistencyModel"]


class ExplanationConsistencyModel(keras.Model):
    """Trains `classifier` with L_cls + α · d(Grad-CAM, IG) (see the module docstring).

    Args:
        classifier: a model that declares its layers (`tfxmed.models.spec.ModelSpec`; every model
            `build_model` builds does): its logits layer is read from the declaration.
        layer: the Grad-CAM layer (default: the declared `ModelSpec.explain_layer`).
        alpha: weight α of the consistency term.
        distance: "l1", "l2" or "cosine" (see `tfxmed.training.losses`).
        ig_steps: trapezoid intervals of the IG path integral.
        ig_fraction: fraction of each per-replica batch that gets IG and the consistency term.
        ig_gradient: differentiate through IG too (the naive, costly variant).
        every: add the term on every `every`-th step (1 = every step).
        ig_baseline: IG's baseline, "zero" or "blurred".
        ig_blur_sigma: the blurred baseline's Gaussian σ, in pixels.
    """

    def __init__(self, classifier: keras.Model, layer: str | None = None, alpha: float = 0.2,
                 distance: str = "l1", ig_steps: int = 4, ig_fraction: float = 0.25, ig_gradient: bool = False,
                 every: int = 1, ig_baseline: str = "zero", ig_blur_sigma: float = 2.0, **kwargs):
        super().__init__(name=kwargs.pop("name", f"{classifier.name}_consistency"), **kwargs)
        if distance not in DISTANCES:
            raise ValueError(f"distance must be one of {', '.join(DISTANCES)}; got '{distance}'")
        if ig_steps < 1 or every < 1 or not 0.0 < ig_fraction <= 1.0:
            raise ValueError(f"need ig_steps >= 1, every >= 1 and 0 < ig_fraction <= 1; "
                             f"got {ig_steps}, {every}, {ig_fraction}")
        if ig_baseline not in IG_BASELINES or not ig_blur_sigma > 0:
            raise ValueError(f"ig_baseline must be one of {', '.join(IG_BASELINES)} and ig_blur_sigma > 0; "
                             f"got '{ig_baseline}' and {ig_blur_sigma}")
        spec = declared_spec(classifier)
        if spec is None:
            raise ValueError(f"classifier '{classifier.name}' declares no ModelSpec (tfxmed.models.spec), so its "
                             "logits layer is unknown: build it with build_model or declare_spec() it")
        self.classifier = classifier
        self.layer = layer or spec.explain_layer
        self.alpha, self.distance, self.ig_steps = alpha, distance, ig_steps
        self.ig_fraction, self.ig_gradient, self.every = ig_fraction, ig_gradient, every
        self.ig_baseline, self.ig_blur_sigma = ig_baseline, ig_blur_sigma
        inputs = model_input(classifier)
        logits = classifier.outputs[0] if spec.logits_layer is None else layer_output(classifier, spec.logits_layer)
        # One forward pass gives the explained activations, the logits and the probabilities.
        self.explained = keras.Model(inputs, [layer_output(classifier, self.layer), logits, classifier.outputs[0]])
        self.logits_view = keras.Model(inputs, logits)
        self.cls_loss_tracker = keras.metrics.Mean(name="cls_loss")
        self.exp_loss_tracker = keras.metrics.Mean(name="exp_loss")
        self.built = classifier.built  # all weights are the classifier's (BackupAndRestore needs a built model)

    def call(self, inputs, training=False):
        return self.classifier(inputs, training=training)

    # -- the two maps ------------------------------------------------------------------------------
    def gradcam(self, images: tf.Tensor, target_weights: tf.Tensor, training: bool = True):
        """(Grad-CAM [n, h, w] differentiable w.r.t. the weights, probabilities) from one forward pass."""
        with tf.GradientTape() as tape:
            activations, logits, probabilities = self.explained(images, training=training)
            score = tf.reduce_sum(tf.cast(logits, tf.float32) * target_weights, axis=-1)
        gradients = tape.gradient(score, activations)
        channel_weights = tf.reduce_mean(gradients, axis=spatial_axes(gradients), keepdims=True)
        cam = tf.nn.relu(tf.reduce_sum(tf.cast(channel_weights * activations, tf.float32), axis=-1))
        return cam, probabilities

    def integrated_gradients(self, images: tf.Tensor, target_weights: tf.Tensor) -> tf.Tensor:
        """Positive part of channel-summed IG attributions [n, H, W] (`ig_baseline`, inference mode)."""
        alphas, weights = (a.astype(np.float32) for a in path_weights(self.ig_steps, "trapezoid"))
        count = tf.shape(images)[0]
        images = tf.cast(images, tf.float32)
        baselines = path_baselines(images, self.ig_baseline, self.ig_blur_sigma)
        difference = images - baselines
        path = baselines[None] + alphas[:, None, None, None, None] * difference[None]
        path = tf.reshape(path, [-1, *images.shape[1:]])
        targets = tf.tile(target_weights, [len(alphas), 1])
        with tf.GradientTape() as tape:
            tape.watch(path)
            score = tf.reduce_sum(tf.cast(self.logits_view(path, training=False), tf.float32) * targets, axis=-1)
        gradients = tf.reshape(tape.gradient(score, path), [len(alphas), count, *images.shape[1:]])
        average = tf.tensordot(tf.constant(weights), tf.cast(gradients, tf.float32), axes=1)
        return tf.nn.relu(tf.reduce_sum(difference * average, axis=-1))

    def consistency_loss(self, images, target_weights, cam) -> tf.Tensor:
        """α-free L_exp on the first `ig_fraction` of the batch (static size under drop_remainder)."""
        batch = images.shape[0]
        count = max(1, int(round(self.ig_fraction * batch))) if batch else tf.shape(images)[0]
        images, target_weights, cam = images[:count], target_weights[:count], cam[:count]
        ig = self.integrated_gradients(images, target_weights)
        if not self.ig_gradient:
            ig = tf.stop_gradient(ig)
        return explanation_consistency(cam, ig, self.distance)

    # -- the step ---------------------------------------------------------------------------------
    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        target_weights = tf.cast(y, tf.float32)
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        with tf.GradientTape() as tape:
            cam, y_pred = self.gradcam(x, target_weights, training=True)
            cls_loss = self.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True)
            if self.every == 1:
                exp_loss = self.consistency_loss(x, target_weights, cam)
            else:
                exp_loss = tf.cond(
                    tf.equal(self.optimizer.iterations % self.every, 0),
                    lambda: self.consistency_loss(x, target_weights, cam),
                    lambda: tf.zeros([]),
                )
            # compute_loss already divides by the replica count; the added term must match.
            loss = cls_loss + self.alpha * exp_loss / replicas
            scaled = self.optimizer.scale_loss(loss)
        weights = self.trainable_weights
        self.optimizer.apply_gradients(zip(tape.gradient(scaled, weights), weights))
        batch = tf.shape(x)[0]
        loss_tracker(self).update_state(loss * replicas, sample_weight=batch)
        self.cls_loss_tracker.update_state(cls_loss * replicas, sample_weight=batch)
        self.exp_loss_tracker.update_state(exp_loss, sample_weight=batch)
        return self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)

    def test_step(self, data):
        logs = super().test_step(data)  # evaluation is the classifier's: no consistency term
        return {key: value for key, value in logs.items() if key not in ("cls_loss", "exp_loss")}
