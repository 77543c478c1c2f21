"""XLA on CPU proves what a TPU would compile (issue 17 §2): the train step (plain and with the explanation-
consistency loss) and the evaluation step compile with `jit_compile=True` and give the results of the
uncompiled steps; `runtime.jit_compile` resolves as documented. The explainers' and the SavedModel's
compiled graphs are tested beside them (tests/explain/test_base.py, tests/test_exporting.py)."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import TINY_CONFIG
from tfxmed.config import load_config
from tfxmed.models import build_model
from tfxmed.training.consistency import ExplanationConsistencyModel
from tfxmed.training.loop import compile_model
from tfxmed.training.xla import check_model_compiles, jit_compile_enabled, keras_jit_compile, on_tpu

MANIFEST = {"num_classes": 2, "multi_label": False}


def _data(count=16, batch=8):
    rng = np.random.default_rng(0)
    images = rng.random((count, 32, 32, 1)).astype(np.float32)
    labels = np.eye(2, dtype=np.float32)[np.arange(count) % 2]
    return tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch, drop_remainder=True)


def _model(jit_compile, consistency=False):
    """The tiny config's model (dropout off: Keras draws dropout masks from other random streams under XLA)."""
    config = load_config(TINY_CONFIG, ["model.dropout=0.0"])
    keras.utils.set_random_seed(0)
    classifier = build_model(config.model, (32, 32, 1), 2, False)
    model = ExplanationConsistencyModel(classifier, alpha=1.0, ig_steps=2, ig_fraction=0.5) if consistency \
        else classifier
    compile_model(model, config, MANIFEST, steps_per_epoch=2, jit_compile=jit_compile)
    return model, classifier


def _hlo(function, *args) -> str:
    return tf.function(function, jit_compile=True).experimental_get_compiler_ir(*args)(stage="hlo")


@pytest.mark.parametrize("consistency", [False, pytest.param(True, marks=pytest.mark.slow)],
                         ids=["plain", "consistency"])
def test_train_step_compiles_with_xla_and_matches_the_uncompiled_step(consistency):
    data = _data()
    compiled, compiled_classifier = _model(True, consistency)
    plain, plain_classifier = _model(False, consistency)
    assert compiled.jit_compile is True and plain.jit_compile is False  # Keras did not fall back silently
    batch = next(iter(data))
    assert "ENTRY" in _hlo(compiled.train_step, batch)  # the step lowers to one XLA computation

    # One step through Keras' compiled train function: the same losses, then the same updated weights.
    history = {m: m.fit(data, epochs=1, steps_per_epoch=1, verbose=0, shuffle=False).history for m in (compiled, plain)}
    for key in ("loss", *(("cls_loss", "exp_loss") if consistency else ())):
        np.testing.assert_allclose(history[compiled][key], history[plain][key], rtol=1e-5, err_msg=key)
    # A conv bias right before batch norm has an exactly zero gradient; Adam turns its rounding noise into
    # lr-sized steps of either sign, so those biases are left out. Every other weight must agree.
    layers = {layer.name for layer in compiled_classifier.layers}
    for after_xla, after_plain in zip(compiled_classifier.trainable_weights, plain_classifier.trainable_weights):
        layer, name = after_xla.path.rsplit("/", 1)
        if name == "bias" and f"{layer}_bn" in layers:
            continue
        np.testing.assert_allclose(after_xla.numpy(), after_plain.numpy(), atol=1e-4, err_msg=after_xla.path)


def test_evaluation_step_compiles_with_xla_and_matches_the_uncompiled_step():
    data = _data(count=24)
    model, _ = _model(False)
    expected = model.evaluate(data, verbose=0, return_dict=True)
    compile_model(model, load_config(TINY_CONFIG), MANIFEST, steps_per_epoch=2, jit_compile=True)  # same weights
    assert model.jit_compile is True
    assert "ENTRY" in _hlo(model.test_step, next(iter(data)))
    got = model.evaluate(data, verbose=0, return_dict=True)
    assert set(got) == set(expected)
    for key in expected:
        np.testing.assert_allclose(got[key], expected[key], rtol=1e-5, err_msg=key)


class _NoXla(keras.layers.Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_jit = False

    def call(self, x):
        return x


def test_a_model_keras_cannot_compile_is_refused_by_layer_name():
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2)(_NoXla(name="host_layer")(inputs)))
    with pytest.warns(UserWarning, match="jit_compile"):
        model.compile("adam", "mse", jit_compile=True)
    with pytest.raises(ValueError, match="runtime.jit_compile=true but Keras cannot compile model .* host_layer"):
        check_model_compiles(model, True)
    check_model_compiles(model, "auto")  # auto: Keras' choice stands


def test_jit_compile_resolves_per_strategy():
    cpu = tf.distribute.get_strategy()
    assert not on_tpu(cpu) and on_tpu("tpu") and not on_tpu("cpu")
    assert jit_compile_enabled(True, cpu) and not jit_compile_enabled("auto", cpu)
    assert not jit_compile_enabled(False, cpu)
    assert jit_compile_enabled("auto", "tpu") and jit_compile_enabled(True, "tpu")
    # Keras: its own choice off TPU; never a second XLA wrapper around TPUStrategy's compiled step.
    assert keras_jit_compile("auto", cpu) == "auto" and keras_jit_compile(True, cpu) is True
    assert keras_jit_compile(True, "tpu") is False and keras_jit_compile("auto", "tpu") is False
