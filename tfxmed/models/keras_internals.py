"""Every use of Keras' private API in tfxmed, behind small named functions.

Keras 3 has no public way to walk a functional model's graph node by node, to find the output of a
shared layer *in one model's graph*, or to change a layer's dtype policy for one call. The explainers
need all three (BN folding, the precision view, LRP's chain check, nested feature maps). Keeping the
private attributes here, and pinning each behaviour in `tests/models/test_keras_internals.py` on a tiny
functional model, means a Keras upgrade that moves them breaks one test file, not the explainers.
Written against Keras 3.15.

Nodes (`keras.src.ops.node.Node`) are used through their attributes `operation` (the layer called),
`parent_nodes`, `output_tensors` and `arguments`; the test pins these too.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator

import keras
from keras.src.ops.function import make_node_key

__all__ = [
    "inbound_nodes",
    "inbound_layers",
    "has_node_graph",
    "graph_nodes",
    "node_input_tensors",
    "node_call_kwargs",
    "producing_layer",
    "node_output_in_graph",
    "flatten_layers",
    "swap_dtype_policy",
    "loss_tracker",
]


def inbound_nodes(layer: keras.layers.Layer) -> list:
    """The nodes created by each call of `layer` on symbolic tensors, in call order (all models)."""
    return list(layer._inbound_nodes)


def inbound_layers(layer: keras.layers.Layer) -> list:
    """The layers whose outputs feed the first call of `layer` ([] for an input layer or an uncalled one)."""
    nodes = inbound_nodes(layer)
    return [node.operation for node in nodes[0].parent_nodes] if nodes else []


def has_node_graph(model) -> bool:
    """Whether `model` keeps a functional graph of nodes (functional models; not subclassed ones)."""
    return hasattr(model, "_nodes_by_depth")


def graph_nodes(model: keras.Model) -> list:
    """Every node of a functional model's graph (one per layer call), in no particular order."""
    return [node for depth in model._nodes_by_depth.values() for node in depth]


def node_input_tensors(node) -> list:
    """The symbolic tensors a node's call received (positional and keyword, flattened)."""
    return list(node.arguments.keras_tensors)


def node_call_kwargs(node) -> dict:
    """The keyword arguments of a node's call (e.g. `training=True` pinned in the graph)."""
    return dict(node.arguments.kwargs)


def producing_layer(tensor) -> keras.layers.Layer:
    """The layer (operation) whose call produced the symbolic `tensor`."""
    return tensor._keras_history.operation


def node_output_in_graph(model: keras.Model, layer: keras.layers.Layer):
    """The output of `layer`'s call that belongs to `model`'s graph (a shared layer has one per call).

    Falls back to `layer.output` (its first call) when no call of it is in the graph.
    """
    graph = getattr(model, "_functional", None) or model  # a Sequential keeps its graph there
    keys = getattr(graph, "_nodes", ())
    for index, node in enumerate(inbound_nodes(layer)):
        if make_node_key(layer, index) in keys:
            return node.output_tensors[0] if len(node.output_tensors) == 1 else node.output_tensors
    return layer.output


def flatten_layers(layer: keras.layers.Layer, include_self: bool = True) -> list:
    """`layer` (if `include_self`) and every layer inside it, recursively (sub-models, sublayers, wrappers)."""
    return list(layer._flatten_layers(include_self=include_self, recursive=True))


@contextlib.contextmanager
def swap_dtype_policy(layers: Iterable[keras.layers.Layer], policy: keras.DTypePolicy) -> Iterator[None]:
    """Gives `layers` the dtype `policy` inside the block and their own back after it, even on errors.

    Keras reads a layer's policy when the layer is called, so a call made inside the block computes in
    the new dtype (variables are still read from, and stay, float32).
    """
    layers = list(layers)
    saved = [layer._dtype_policy for layer in layers]
    for layer in layers:
        layer._dtype_policy = policy
    try:
        yield
    finally:
        for layer, own in zip(layers, saved):
            layer._dtype_policy = own


def loss_tracker(model: keras.Model) -> keras.metrics.Mean:
    """The `loss` metric a custom `train_step` updates (what `compute_loss` reports in the logs)."""
    return model._loss_tracker
