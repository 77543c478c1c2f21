"""Explaining in lower precision: a view of a model that computes in bfloat16 (or float16).

`compute_in(model, "bfloat16")` returns a model with the same variables (nothing is copied, so later
weight changes are seen) whose layers compute in that dtype, as under Keras' `mixed_bfloat16` policy:
variables stay float32 and are cast when read. Explainers then run their forward and backward passes
in bfloat16 — on CPUs with AMX / AVX512-BF16 and on GPUs and TPUs that is where the speed is — while
targets, scores and maps stay float32. The price is precision: maps move by a few per cent of their
range (`scripts/benchmark_explain.py` reports the difference from float32 and IG's completeness error).
"""

from __future__ import annotations

import keras

from tfxmed.explain.rewiring import has_graph, rewire
from tfxmed.models.keras_internals import flatten_layers, swap_dtype_policy

__all__ = ["PRECISIONS", "compute_in"]

PRECISIONS = ("float32", "bfloat16", "float16")


def _quantized(layer) -> bool:
    return layer.dtype_policy.quantization_mode is not None


class _ComputeIn(keras.layers.Layer):
    """Calls `layer` under another dtype policy; the layer and its variables are shared, not copied.

    Keras reads a layer's policy when the layer is called, so the policies of the layer and its
    sublayers are swapped for the duration of that call only (it happens while a `tf.function`
    traces, once per signature).
    """

    def __init__(self, layer: keras.layers.Layer, policy: keras.DTypePolicy, **kwargs):
        super().__init__(name=layer.name, dtype=policy, **kwargs)
        self.inner, self.policy = layer, policy

    def call(self, *args, **kwargs):
        # A custom layer's sublayers (e.g. an attention block's MLP) compute in the same dtype.
        layers = [layer for layer in flatten_layers(self.inner) if not _quantized(layer)]
        with swap_dtype_policy(layers, self.policy):
            try:
                return self.inner(*args, **kwargs)
            except TypeError as error:
                raise TypeError(
                    f"layer '{self.inner.name}' ({type(self.inner).__name__}) cannot compute in "
                    f"{self.policy.compute_dtype} (a float32 constant or cast in its call?); explain with "
                    f"precision='float32'. Cause: {error}"
                ) from error

    def compute_output_spec(self, *args, **kwargs):
        return self.call(*args, **kwargs)


def compute_in(model: keras.Model, dtype: str) -> keras.Model:
    """A view of `model` whose layers compute in `dtype` ("float32" returns `model` itself)."""
    if dtype not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}; got '{dtype}'")
    if dtype == "float32":
        return model
    policy = keras.DTypePolicy(f"mixed_{dtype}")
    wrapped: dict[int, keras.layers.Layer] = {}  # one wrapper per layer, however often it is called

    def call(layer, *args, **kwargs):
        if _quantized(layer):
            return layer(*args, **kwargs)  # quantized layers keep their own policy (and kernels)
        if id(layer) not in wrapped:
            wrapped[id(layer)] = compute_in(layer, dtype) if has_graph(layer) else _ComputeIn(layer, policy)
        return wrapped[id(layer)](*args, **kwargs)

    try:
        return rewire(model, call)
    except ValueError as error:
        raise ValueError(f"precision='{dtype}' needs a functional or Sequential model: {error}") from error
