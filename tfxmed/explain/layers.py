"""Explanations as Keras layers, usable inside a Keras model and a SavedModel signature.

    maps = GradCAMLayer(classifier, layer_name="csam")(images)            # predicted class
    maps = IntegratedGradientsLayer(classifier, steps=16)(images, targets)  # one-hot / multi-hot targets
    # any in-graph method
    maps = ExplanationLayer(classifier, "fusion", {"weights": {"gradcam": 0.4, "ig": 0.4}})(images)
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tfxmed.explain.grad_cam import GradCam
from tfxmed.explain.integrated_gradients import IntegratedGradients
from tfxmed.explain.registry import make_explainer

__all__ = ["GradCAMLayer", "IntegratedGradientsLayer", "ExplanationLayer"]


class _ExplanationLayer(keras.layers.Layer):
    """Shared contract: holds the classifier, explains `targets` (default: the predicted class)."""

    def __init__(self, model: keras.Model, batch_size: int = 32, **kwargs):
        super().__init__(**kwargs)
        self.classifier = model
        self.batch_size = batch_size

    def make_explainer(self):
        raise NotImplementedError

    def build(self, images_shape, targets_shape=None):
        self.explainer = self.make_explainer()
        self.built = True

    def call(self, images, targets=None):
        if targets is None:
            scores = self.explainer.scores(images, training=False)
            targets = tf.one_hot(tf.argmax(scores, axis=-1), tf.shape(scores)[-1])
        return self.explainer.compiled_batch(images, tf.cast(targets, tf.float32))

    def compute_output_shape(self, images_shape, targets_shape=None):
        return tuple(images_shape[:-1])

    def get_config(self):
        return {**super().get_config(), "model": keras.saving.serialize_keras_object(self.classifier),
                "batch_size": self.batch_size}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["model"] = keras.saving.deserialize_keras_object(config["model"])
        return cls(**config)


@keras.saving.register_keras_serializable(package="tfxmed")
class GradCAMLayer(_ExplanationLayer):
    """Grad-CAM maps [N, *spatial] at input resolution, normalised to [0, 1].

    Args:
        model: the classifier.  layer_name: explained layer (default: the model's declared explain layer,
            `tfxmed.models.spec.default_explain_layer`).
    """

    def __init__(self, model: keras.Model, layer_name: str | None = None, **kwargs):
        self.layer_name = layer_name
        super().__init__(model, **kwargs)

    def make_explainer(self):
        return GradCam(self.classifier, layer=self.layer_name, batch_size=self.batch_size)

    def get_config(self):
        return {**super().get_config(), "layer_name": self.layer_name}


@keras.saving.register_keras_serializable(package="tfxmed")
class IntegratedGradientsLayer(_ExplanationLayer):
    """Integrated Gradients maps [N, *spatial] (summed over channels, zero baseline by default).

    Args:
        model: the classifier.  steps: quadrature intervals.  rule: see `IntegratedGradients`.
    """

    def __init__(self, model: keras.Model, steps: int = 32, rule: str = "trapezoid", **kwargs):
        self.steps, self.rule = steps, rule
        super().__init__(model, **kwargs)

    def make_explainer(self):
        return IntegratedGradients(self.classifier, steps=self.steps, rule=self.rule, batch_size=self.batch_size)

    def get_config(self):
        return {**super().get_config(), "steps": self.steps, "rule": self.rule}


@keras.saving.register_keras_serializable(package="tfxmed")
class ExplanationLayer(_ExplanationLayer):
    """Maps [N, *spatial] of any in-graph method built by `make_explainer(method, model, **options)`.

    Host-side methods (LIME, KernelSHAP, a fusion that includes them) are refused: they fit a
    surrogate per image in NumPy and cannot run inside a graph or a SavedModel signature.
    """

    def __init__(self, model: keras.Model, method: str, options: dict | None = None, **kwargs):
        self.method, self.options = method, dict(options or {})
        super().__init__(model, **kwargs)
        probe = self.make_explainer()
        if not probe.in_graph:
            raise ValueError(f"explanation method '{method}' computes on the host and cannot be served in a graph; "
                             "choose an in-graph method (the CAM family, saliency, smoothgrad, ig, occlusion, lrp) "
                             "or a fusion of them")

    def make_explainer(self):
        return make_explainer(self.method, self.classifier, batch_size=self.batch_size, **self.options)

    def get_config(self):
        return {**super().get_config(), "method": self.method, "options": self.options}
