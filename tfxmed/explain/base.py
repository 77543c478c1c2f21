"""The base explainer: batching, target selection, logits and compilation.

Every method is called the same way, `explainer(images, targets) -> maps`, and overrides one hook.
Targets may be None (the predicted class), an int (same class for all), a per-sample list of ints,
one-hot rows, or multi-hot rows (the explained score is then the sum of those classes' logits).
"""

from __future__ import annotations

import warnings

import keras
import numpy as np
import tensorflow as tf

from tfxmed.explain.folding import fold_batch_normalization
from tfxmed.explain.precision import compute_in
from tfxmed.models.factory import layer_output, model_input
from tfxmed.models.spec import declared_spec

__all__ = ["Explainer", "target_weights", "score_model", "as_float32", "host_side_message"]


def score_model(model: keras.Model) -> keras.Model:
    """The model up to its pre-activation scores, in float32.

    Uses the model's declared `ModelSpec.logits_layer` (`tfxmed.models.spec`). A model without a
    declaration gets the generic fallback: if its last layer applies softmax or sigmoid, a warning and
    the input of that activation; otherwise its output as it is. Mixed-precision models (bfloat16 /
    float16 compute) get their scores cast to float32, so targets and maps are float32 whatever the policy.
    """
    return as_float32(_pre_activation_model(model))


def as_float32(model: keras.Model) -> keras.Model:
    """`model` with its output cast to float32 (itself when it already is)."""
    if model.output.dtype == "float32":
        return model
    cast = keras.layers.Activation("linear", dtype="float32", name="scores_float32")(model.output)
    return keras.Model(model_input(model), cast, name=model.name)


def _pre_activation_model(model: keras.Model) -> keras.Model:
    spec = declared_spec(model)
    if spec is not None:
        if spec.logits_layer is None:
            return _graph_of(model)
        return keras.Model(model_input(model), layer_output(model, spec.logits_layer), name=f"{model.name}_logits")
    last = model.layers[-1]  # the generic fallback, for models that declare no ModelSpec
    activation = getattr(last, "activation", None)
    activation_name = getattr(activation, "__name__", "")
    if activation_name in ("softmax", "sigmoid"):
        warnings.warn(
            f"model '{model.name}' ends in {activation_name}; explaining the pre-activation scores "
            "(declare the pre-activation layer with tfxmed.models.declare_spec to choose it explicitly)",
            stacklevel=3,
        )
        if isinstance(last, keras.layers.Activation):
            return keras.Model(model_input(model), last.input, name=f"{model.name}_logits")
        clone = last.__class__.from_config({**last.get_config(), "activation": "linear", "name": "logits"})
        clone.build(last.input.shape)
        clone.set_weights(last.get_weights())
        return keras.Model(model_input(model), clone(last.input), name=f"{model.name}_logits")
    return _graph_of(model)


def _graph_of(model: keras.Model) -> keras.Model:
    """`model` itself, or a functional view of a Sequential one (which has no `output` of its own)."""
    if isinstance(model, keras.Sequential):
        return keras.Model(model_input(model), model.outputs[0], name=model.name)
    return model


def host_side_message(method: str) -> str:
    """Why a host-side method cannot be XLA-compiled, and what to use instead."""
    return (f"explanation method '{method}' fits a surrogate per image on the host (NumPy/scikit-learn) and cannot "
            "be compiled with XLA (runtime.jit_compile=true or a TPU); choose an in-graph method: the CAM family, "
            "saliency, smoothgrad, ig, occlusion, lrp, or a fusion of them")


def target_weights(targets, num_classes: int, count: int, predicted: np.ndarray | None = None) -> np.ndarray:
    """Turns any accepted target form into float weights [count, num_classes]."""
    if targets is None:
        if predicted is None:
            raise ValueError("targets=None needs the model's predictions")
        targets = np.argmax(predicted, axis=-1)
    array = np.asarray(targets)
    if array.ndim == 0:
        array = np.full(count, int(array))
    if array.ndim == 1:
        if array.shape[0] != count:
            raise ValueError(f"targets has {array.shape[0]} entries for {count} images")
        if np.any(array < 0) or np.any(array >= num_classes):
            raise ValueError(f"target class indices must be in [0, {num_classes}), got {array.tolist()}")
        return np.eye(num_classes, dtype=np.float32)[array.astype(int)]
    if array.shape != (count, num_classes):
        raise ValueError(f"targets rows must have shape ({count}, {num_classes}), got {array.shape}")
    return array.astype(np.float32)


class Explainer:
    """Base class. Subclasses implement `explain_batch(images, target_weights) -> maps [n, *spatial]`.

    Args:
        model: a Keras classifier; its pre-activation scores are explained (see `score_model`).
        batch_size: upper bound on every internal batch.
        precision: "float32" (default), or "bfloat16" / "float16" to run the model's forward and
            backward passes in that dtype (`tfxmed.explain.precision`); maps are float32 either way.

    BatchNormalization layers are folded into the convolutions before them (`fold_batch_normalization`:
    the same function, cheaper; it reads the model's variables live). A subclass that walks the layers
    itself sets `fold_batch_norm = False`; `kept_layers()` names layers whose own output must survive.
    """

    fold_batch_norm = True
    # False for methods that compute on the host (NumPy, per-image fitting): they cannot sit inside a
    # SavedModel signature or an XLA-compiled (TPU) graph, and `with_jit_compile` refuses them.
    in_graph = True
    # True once `with_jit_compile()`: the compiled functions below are XLA-compiled (`jit_compile=True`).
    jit_compile = False
    # True when `explain_batch(images, None)` explains each image's predicted class from the scores of
    # its own forward pass, so `targets=None` costs no separate prediction pass.
    predicts_in_graph = False

    def __init__(self, model: keras.Model, batch_size: int = 32, precision: str = "float32"):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model = model
        self.batch_size = batch_size
        self.precision = precision
        # Cut at the pre-activation scores on the model itself, then fold, then change precision:
        # the cut reads the original graph's tensors, the views rebuild it.
        scores = _pre_activation_model(model)
        if self.fold_batch_norm:
            scores = fold_batch_normalization(scores, keep=self.kept_layers())
        self.scores = as_float32(compute_in(scores, precision))
        self.num_classes = int(self.scores.output.shape[-1])
        self.input_shape = tuple(model.inputs[0].shape[1:])
        self._signature = [
            tf.TensorSpec((None, *self.input_shape), tf.float32),
            tf.TensorSpec((None, self.num_classes), tf.float32),
        ]
        self.build_functions()

    def compiled(self, function, input_signature) -> tf.types.experimental.PolymorphicFunction:
        """`function` as a `tf.function`, XLA-compiled after `with_jit_compile()` (once per batch shape)."""
        return tf.function(function, input_signature=input_signature, jit_compile=self.jit_compile or None)

    def build_functions(self) -> None:
        """(Re)builds the compiled functions; a subclass with functions of its own extends this."""
        self.compiled_batch = self.compiled(self.explain_batch, self._signature)
        # Eager calls of a deep Keras model cost milliseconds of Python per call: host-side methods
        # (LIME, KernelSHAP, target selection) score through this one compiled function instead.
        images_only = self._signature[:1]
        self._compiled_scores = self.compiled(lambda x: self.scores(x, training=False), images_only)
        self._compiled_predicted = self.compiled(lambda x: self.explain_batch(x, None), images_only)

    def with_jit_compile(self, enabled: bool = True) -> Explainer:
        """Compiles this explainer's graphs with XLA, as a TPU needs (`runtime.jit_compile`); returns self.

        Host-side methods (`in_graph = False`: LIME, KernelSHAP) are refused with a ValueError naming them.
        """
        if enabled and not self.in_graph:
            raise ValueError(host_side_message(type(self).__name__))
        self.jit_compile = bool(enabled)
        self.build_functions()
        return self

    def kept_layers(self) -> tuple[str, ...]:
        """Names of layers that batch-normalisation folding must not merge away."""
        return ()

    def predict_scores(self, images: np.ndarray) -> np.ndarray:
        """Pre-activation scores [N, K] of `images`, in compiled batches of at most `batch_size`."""
        images = np.asarray(images, np.float32)
        if not len(images):
            return np.zeros((0, self.num_classes), np.float32)
        return np.concatenate([self._compiled_scores(images[i : i + self.batch_size]).numpy()
                               for i in range(0, len(images), self.batch_size)])

    def explain_batch(self, images: tf.Tensor, target_weights: tf.Tensor) -> tf.Tensor:
        raise NotImplementedError

    def _check(self, images: np.ndarray) -> None:
        if images.shape[1:] != self.input_shape:
            raise ValueError(f"images must have shape [N, {', '.join(map(str, self.input_shape))}], got {images.shape}")

    def _weights_for(self, images: np.ndarray, targets) -> np.ndarray:
        """Target weights [N, K]; `None` means each image's predicted class."""
        self._check(images)
        predicted = self.predict_scores(images) if targets is None else None
        return target_weights(targets, self.num_classes, len(images), predicted)

    def __call__(self, images, targets=None) -> np.ndarray:
        images = np.asarray(images, dtype=np.float32)
        if targets is None and self.predicts_in_graph:
            self._check(images)
            explain = lambda start, stop: self._compiled_predicted(images[start:stop])  # noqa: E731
        else:
            weights = self._weights_for(images, targets)
            explain = lambda start, stop: self.compiled_batch(images[start:stop], weights[start:stop])  # noqa: E731
        maps = [explain(i, i + self.batch_size).numpy() for i in range(0, len(images), self.batch_size)]
        return np.concatenate(maps) if maps else np.zeros((0, *self.input_shape[:-1]), np.float32)
