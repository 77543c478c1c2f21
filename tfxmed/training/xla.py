"""XLA compilation (`runtime.jit_compile: true | false | auto`): what a TPU runs, checked on any device.

A TPU runs only graphs that XLA compiles, with static shapes. `runtime.jit_compile` says whether the
train and evaluation steps, the in-graph explainers and the exported signatures' compute are compiled:

- `true`: always, on any device (on CPU this proves a graph would compile for a TPU;
  tests/training/test_xla.py does exactly that for every device-side graph).
- `false`: never (refused with runtime.strategy=tpu when the config loads).
- `auto`: on under a TPU; elsewhere Keras chooses for the steps (XLA on a single GPU when every layer
  supports it, not on CPU or under other strategies) and explainers run as plain `tf.function`s.

Under `TPUStrategy`, Keras gets `jit_compile=False`: the strategy compiles every replica step with XLA
itself, and wrapping that step in a second XLA function is what keras-hub#443 saw fail.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tfxmed.models.keras_internals import flatten_layers

__all__ = ["on_tpu", "jit_compile_enabled", "keras_jit_compile", "check_model_compiles"]


def on_tpu(strategy: tf.distribute.Strategy | str) -> bool:
    """Whether `strategy` (a strategy or its `runtime.strategy` name) runs on a TPU."""
    if isinstance(strategy, str):
        return strategy == "tpu"
    return isinstance(strategy, (tf.distribute.TPUStrategy, tf.distribute.experimental.TPUStrategy))


def jit_compile_enabled(setting: bool | str, strategy: tf.distribute.Strategy | str) -> bool:
    """Whether device graphs (explainers, exported signatures) are XLA-compiled under `strategy`."""
    return setting is True or (setting == "auto" and on_tpu(strategy))


def keras_jit_compile(setting: bool | str, strategy: tf.distribute.Strategy | str) -> bool | str:
    """The `jit_compile` argument of `model.compile` for `setting` under `strategy` (see the module docstring)."""
    if on_tpu(strategy):
        return False  # TPUStrategy compiles the replica step with XLA already
    return setting


def check_model_compiles(model: keras.Model, requested: bool | str) -> None:
    """After `model.compile`: Keras silently falls back to no XLA when a layer does not support it;
    with `requested=True` that is an error naming the layers."""
    if requested is True and not model.jit_compile:
        unsupported = [layer.name for layer in flatten_layers(model) if not layer.supports_jit]
        raise ValueError(f"runtime.jit_compile=true but Keras cannot compile model '{model.name}' with XLA: "
                         f"layers without XLA support: {', '.join(unsupported) or '(none; op determinism is on?)'}; "
                         "set runtime.jit_compile to auto or false")
