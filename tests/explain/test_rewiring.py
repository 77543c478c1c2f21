"""Rebuilding a model's graph with each layer call redirected (`tfxmed.explain.rewiring`): the layers (and
their variables) are shared, every call goes through the redirect, subclassed models are refused."""

import keras
import numpy as np
import pytest

from tfxmed.explain.rewiring import has_graph, rewire


def _functional():
    inputs = keras.Input((6,))
    hidden = keras.layers.Dense(4, activation="relu", name="hidden")(inputs)
    return keras.Model(inputs, keras.layers.Dense(2, name="out")(hidden), name="functional")


class _Subclassed(keras.Model):
    def __init__(self):
        super().__init__(name="subclassed")
        self.dense = keras.layers.Dense(2)

    def call(self, inputs):
        return self.dense(inputs)


@pytest.mark.parametrize("build", [_functional, lambda: keras.Sequential(
    [keras.Input((6,)), keras.layers.Dense(4, activation="relu", name="hidden"), keras.layers.Dense(2, name="out")])])
def test_a_pass_through_rewire_shares_the_layers_and_computes_the_same(build, rng):
    model = build()
    seen = []

    def call(layer, *args, **kwargs):
        seen.append(layer.name)
        return layer(*args, **kwargs)

    rewired = rewire(model, call)
    assert seen == ["hidden", "out"]  # every layer call went through the redirect, in order
    assert {id(v) for v in rewired.weights} == {id(v) for v in model.weights}  # shared, not cloned
    x = rng.normal(size=(3, 6)).astype("float32")
    np.testing.assert_allclose(rewired(x).numpy(), model(x).numpy(), rtol=1e-6)
    model.get_layer("out").set_weights([w * 0 for w in model.get_layer("out").get_weights()])
    np.testing.assert_allclose(rewired(x).numpy(), 0.0)  # a change to the model shows in the view


def test_a_redirect_changes_what_one_layer_computes(rng):
    model = _functional()

    def call(layer, *args, **kwargs):
        output = layer(*args, **kwargs)
        return 2.0 * output if layer.name == "hidden" else output

    x = rng.normal(size=(3, 6)).astype("float32")
    out = model.get_layer("out")
    hidden = model.get_layer("hidden")(x).numpy()
    expected = 2.0 * hidden @ out.kernel.numpy() + out.bias.numpy()
    np.testing.assert_allclose(rewire(model, call)(x).numpy(), expected, rtol=1e-5, atol=1e-6)


def test_subclassed_models_have_no_graph_to_rewire():
    model = _Subclassed()
    model(np.zeros((1, 6), np.float32))
    assert not has_graph(model) and has_graph(_functional())
    with pytest.raises(ValueError, match="model 'subclassed' is subclassed: it has no layer graph to rebuild"):
        rewire(model, lambda layer, *args, **kwargs: layer(*args, **kwargs))
