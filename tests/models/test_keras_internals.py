"""Pins every Keras private API tfxmed uses (`tfxmed.models.keras_internals`) on tiny functional models.

If a Keras upgrade moves one of them, the failure is here, named, rather than deep inside an explainer.
"""

import keras
import numpy as np
import pytest

from tfxmed.models import keras_internals as internals


def _shared_dense_models():
    """Two functional models that call the same Dense layer (`shared`) on different tensors."""
    shared = keras.layers.Dense(2, name="shared")
    first_input = keras.Input((3,), name="first_input")
    first = keras.Model(first_input, shared(keras.layers.Dense(3, name="before")(first_input)), name="first")
    second_input = keras.Input((3,), name="second_input")
    second = keras.Model(second_input, shared(second_input), name="second")
    return shared, first, second


def _conv_chain():
    """image → conv → BN (pinned to training=True) → ReLU → GAP → Dense `logits`."""
    inputs = keras.Input((6, 6, 1), name="image")
    conv = keras.layers.Conv2D(3, 3, name="conv")(inputs)
    norm = keras.layers.BatchNormalization(name="norm")(conv, training=True)
    relu = keras.layers.ReLU(name="relu")(norm)
    logits = keras.layers.Dense(2, name="logits")(keras.layers.GlobalAveragePooling2D(name="pool")(relu))
    return keras.Model(inputs, logits), conv


def test_inbound_nodes_are_one_per_call_in_call_order():
    shared, first, second = _shared_dense_models()
    nodes = internals.inbound_nodes(shared)
    assert len(nodes) == 2
    assert nodes[0].operation is shared
    assert nodes[0].output_tensors[0] is first.outputs[0] and nodes[1].output_tensors[0] is second.outputs[0]
    assert [layer.name for layer in internals.inbound_layers(shared)] == ["before"]
    assert internals.inbound_layers(first.get_layer("before")) == [first.layers[0]]  # the InputLayer


def test_node_output_in_graph_picks_this_models_call_of_a_shared_layer():
    shared, first, second = _shared_dense_models()
    assert internals.node_output_in_graph(first, shared) is first.outputs[0]
    assert internals.node_output_in_graph(second, shared) is second.outputs[0]
    sequential = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, name="inner"), keras.layers.Dense(2)])
    inner = sequential.get_layer("inner")
    view = keras.Model(sequential.inputs[0], internals.node_output_in_graph(sequential, inner))
    assert view.output_shape == (None, 4)
    unused = keras.layers.Dense(2, name="unused")
    unused(keras.Input((3,)))
    assert internals.node_output_in_graph(first, unused) is unused.output  # not in the graph: its first call


def test_graph_nodes_and_what_each_node_records():
    model, conv = _conv_chain()
    assert internals.has_node_graph(model)
    assert not internals.has_node_graph(keras.layers.Dense(2))
    nodes = internals.graph_nodes(model)
    by_layer = {node.operation.name: node for node in nodes}
    assert set(by_layer) == {"image", "conv", "norm", "relu", "pool", "logits"}
    norm = by_layer["norm"]
    assert internals.node_input_tensors(norm) == [conv]
    assert internals.node_call_kwargs(norm) == {"training": True}
    assert internals.node_call_kwargs(by_layer["relu"]) == {}
    assert internals.producing_layer(conv) is model.get_layer("conv")
    assert [node.operation.name for node in by_layer["relu"].parent_nodes] == ["norm"]


def test_flatten_layers_reaches_into_sub_models():
    model, _ = _conv_chain()
    inputs = keras.Input((6, 6, 1))
    outer = keras.Model(inputs, keras.layers.Activation("softmax", name="head")(model(inputs)))
    names = [layer.name for layer in internals.flatten_layers(outer, include_self=False)]
    assert {"conv", "norm", "logits", "head"} <= set(names)
    assert internals.flatten_layers(outer)[0] is outer


def test_a_swapped_dtype_policy_holds_inside_the_block_only():
    layer = keras.layers.Dense(2)
    layer.build((None, 3))
    inside = None
    with pytest.raises(RuntimeError):
        with internals.swap_dtype_policy([layer], keras.DTypePolicy("mixed_bfloat16")):
            inside = layer(np.ones((1, 3), np.float32))
            raise RuntimeError("the policy comes back even on errors")
    assert inside.dtype == "bfloat16" and layer.kernel.dtype == "float32"
    assert layer.dtype_policy.name == "float32" and layer(np.ones((1, 3), np.float32)).dtype == "float32"


def test_loss_tracker_is_the_loss_a_custom_train_step_reports():
    model, _ = _conv_chain()
    model.compile(optimizer="sgd", loss="mse")
    tracker = internals.loss_tracker(model)
    assert isinstance(tracker, keras.metrics.Mean) and tracker in model.metrics
