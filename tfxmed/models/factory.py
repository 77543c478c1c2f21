"""One place that turns a `ModelConfig` into a Keras model, plus views onto built models."""

from __future__ import annotations

from typing import Sequence

import keras

from tfxmed.config import MODEL_NAMES, ModelConfig
from tfxmed.models.keras_internals import node_output_in_graph
from tfxmed.models.resnet_attention import resnet_attention
from tfxmed.models.small_cnn import small_cnn

__all__ = ["layer_output", "model_input", "build_model", "MODEL_NAMES", "default_explain_layer", "attention_model", "logits_model", "find_layer"]


def build_model(config: ModelConfig, input_shape: Sequence[int], num_classes: int, multi_label: bool) -> keras.Model:
    """Builds the configured classifier (outputs probabilities; the `logits` layer precedes them)."""
    if config.name == "resnet50_attention":
        resnet = config.resnet50_attention
        return resnet_attention(
            input_shape, num_classes, multi_label, config.attention, config.dropout,
            resnet.blocks, resnet.width, resnet.stem_pool, config.weights,
        )
    if config.name == "small_cnn":
        cnn = config.small_cnn
        model = small_cnn(
            input_shape, num_classes, multi_label, config.attention, config.dropout,
            cnn.width, cnn.blocks, kernel_size=cnn.kernel_size,
        )
        if config.weights not in ("none", ""):
            model.load_weights(config.weights)
        return model
    raise ValueError(f"model.name must be one of {', '.join(MODEL_NAMES)}; got '{config.name}'")


def find_layer(model: keras.Model, name: str) -> keras.layers.Layer:
    """Finds a layer by name, searching nested sub-models depth first."""
    for layer in model.layers:
        if layer.name == name:
            return layer
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            try:
                return find_layer(layer, name)
            except ValueError:
                continue
    raise ValueError(f"no layer named '{name}' in model '{model.name}'")


def layer_output(model: keras.Model, name: str):
    """The output tensor of layer `name` *in this model's graph* (a shared layer has one per call)."""
    return node_output_in_graph(model, model.get_layer(name))


def model_input(model: keras.Model):
    """The input tensor of a single-input model (works for Sequential models too)."""
    return model.inputs[0] if len(model.inputs) == 1 else model.inputs


def default_explain_layer(model: keras.Model) -> str:
    """The layer Grad-CAM explains by default: the attention output, else the last feature map."""
    names = [layer.name for layer in model.layers]
    for candidate in ("csam", "conv4_block6_out", "last_conv_relu"):
        if candidate in names:
            return candidate
    spatial = [layer.name for layer in model.layers if len(getattr(layer, "output", None).shape or ()) == 4]
    if not spatial:
        raise ValueError(f"model '{model.name}' has no 4-D feature map to explain")
    return spatial[-1]


def logits_model(model: keras.Model) -> keras.Model:
    """A view of `model` that outputs the pre-activation `logits` layer."""
    return keras.Model(model_input(model), layer_output(model, "logits"), name=f"{model.name}_logits")


def attention_model(model: keras.Model) -> keras.Model:
    """A view of `model` that outputs the CSAM spatial attention map [N, h, w, 1]."""
    return keras.Model(model_input(model), layer_output(model, "csam_spatial"), name=f"{model.name}_attention")
