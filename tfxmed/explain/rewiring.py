"""Rebuilding a Keras model's graph with each layer call redirected, sharing the layers' variables."""

from __future__ import annotations

from collections.abc import Callable

import keras

from tfxmed.models.keras_internals import has_node_graph

__all__ = ["has_graph", "rewire"]


def has_graph(model) -> bool:
    """Whether `model` is a functional or Sequential model (a layer graph `rewire` can rebuild)."""
    return isinstance(model, keras.Sequential) or has_node_graph(model)


def rewire(model: keras.Model, call: Callable) -> keras.Model:
    """A functional model whose every layer call `layer(*args, **kwargs)` becomes `call(layer, *args, **kwargs)`.

    Works for functional and Sequential models; the layers themselves are shared, not cloned.
    Subclassed models have no graph to rewire and raise ValueError.
    """
    if isinstance(model, keras.Sequential):
        inputs = keras.Input(model.input_shape[1:])
        outputs = inputs
        for layer in model.layers:
            outputs = call(layer, outputs)
        return keras.Model(inputs, outputs, name=model.name)
    if not has_graph(model):
        raise ValueError(f"model '{model.name}' is subclassed: it has no layer graph to rebuild")
    return keras.models.clone_model(model, clone_function=lambda layer: layer, call_function=call)
