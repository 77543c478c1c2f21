"""One place that turns a `ModelConfig` into a Keras model (and its `ModelSpec`), plus views onto built models."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import keras

from tfxmed.config import ModelConfig
from tfxmed.config_choices import MODEL_NAMES
from tfxmed.models.applications import BACKBONES, application, application_spec
from tfxmed.models.cnn_rnn import cnn_rnn, cnn_rnn_spec
from tfxmed.models.fusion import fusion, fusion_spec
from tfxmed.models.keras_internals import node_output_in_graph
from tfxmed.models.layers.head import with_group_softmax
from tfxmed.models.resnet3d import resnet3d, resnet3d_spec
from tfxmed.models.resnet_attention import resnet_attention, resnet_attention_spec
from tfxmed.models.small_cnn import small_cnn, small_cnn_spec
from tfxmed.models.spec import ModelSpec, declare_spec, declared_spec
from tfxmed.models.vit import vit, vit_spec

__all__ = [
    "layer_output", "model_input", "build_model", "model_spec", "MODEL_NAMES", "attention_model", "logits_model",
    "find_layer",
]

# Each model's `ModelSpec` as a function of its config: what its builder attaches to the model it builds.
SPECS = {
    "resnet50_attention": lambda config: resnet_attention_spec(config.attention, config.resnet50_attention.blocks),
    "small_cnn": lambda config: small_cnn_spec(config.attention, config.small_cnn.blocks),
    **{name: (lambda config, name=name: application_spec(name, config.attention)) for name in BACKBONES},
    "vit": lambda config: vit_spec(config.attention),
    "resnet3d": lambda config: resnet3d_spec(config.attention),
    "cnn_rnn": lambda config: cnn_rnn_spec(),
    "fusion": lambda config: fusion_spec([model_spec(_member(config, name)) for name in config.fusion.members]),
}


def _member(config: ModelConfig, name: str) -> ModelConfig:
    """A fusion member's config: the fusion's, with `name` as the model (each reads its own section); ImageNet
    weights go to each member, a weights file to the whole fusion."""
    return dataclasses.replace(config, name=name, weights="imagenet" if config.weights == "imagenet" else "none")


def build_model(config: ModelConfig, input_shape: Sequence[int], num_classes: int, multi_label: bool,
                label_groups: Sequence[Sequence[int]] | None = None) -> keras.Model:
    """Builds the configured classifier (outputs probabilities; the `logits` layer precedes them).

    `label_groups` (multi-label only; the manifest's, e.g. CheXpert U-MultiClass): the outputs end in a
    softmax per group (`GroupSoftmax`) instead of independent sigmoids."""
    model = _build(config, input_shape, num_classes, multi_label)
    if not label_groups:
        return model
    if not multi_label:
        raise ValueError("label_groups: a softmax per group of outputs is for multi-label data")
    return declare_spec(with_group_softmax(model, label_groups), declared_spec(model))


def _build(config: ModelConfig, input_shape: Sequence[int], num_classes: int, multi_label: bool) -> keras.Model:
    if config.name == "resnet50_attention":
        resnet = config.resnet50_attention
        return resnet_attention(
            input_shape, num_classes, multi_label, config.attention, config.dropout,
            resnet.blocks, resnet.width, resnet.stem_pool, config.weights, config.pooling, config.lse_r,
            resnet.downsample,
        )
    if config.name == "small_cnn":
        cnn = config.small_cnn
        model = small_cnn(
            input_shape, num_classes, multi_label, config.attention, config.dropout,
            cnn.width, cnn.blocks, kernel_size=cnn.kernel_size, pooling=config.pooling, lse_r=config.lse_r,
        )
        if config.weights not in ("none", ""):
            model.load_weights(config.weights)
        return model
    if config.name == "fusion":
        model = fusion(config.fusion.members, lambda name: build_model(_member(config, name), input_shape, num_classes,
                                                                       multi_label),
                       input_shape, num_classes, multi_label, config.dropout)
        if config.weights not in ("none", "", "imagenet"):
            model.load_weights(config.weights)
        return model
    if config.name == "resnet3d":
        return resnet3d(input_shape, num_classes, multi_label, config.attention, config.dropout,
                        config.resnet3d.blocks, config.resnet3d.width, config.weights, config.pooling, config.lse_r)
    if config.name == "cnn_rnn":
        options = config.cnn_rnn
        return cnn_rnn(input_shape, num_classes, multi_label, config.dropout, options.width, options.stages,
                       options.units, config.weights)
    if config.name == "vit":
        options = config.vit
        return vit(input_shape, num_classes, multi_label, config.attention, config.dropout, options.size,
                   options.patch_size, options.depth, config.weights, options.token_dropout)
    if config.name in BACKBONES:
        return application(config.name, input_shape, num_classes, multi_label, config.attention, config.dropout,
                           config.weights, config.pooling, config.lse_r)
    raise ValueError(f"model.name must be one of {', '.join(MODEL_NAMES)}; got '{config.name}'")


def model_spec(config: ModelConfig) -> ModelSpec:
    """The `ModelSpec` that `build_model(config, ...)` attaches to its model (and `load_run` re-attaches)."""
    if config.name not in SPECS:
        raise ValueError(f"model.name must be one of {', '.join(MODEL_NAMES)}; got '{config.name}'")
    return SPECS[config.name](config)


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


def _declared(model: keras.Model) -> ModelSpec:
    spec = declared_spec(model)
    if spec is None:
        raise ValueError(f"model '{model.name}' declares no ModelSpec (tfxmed.models.spec): build it with build_model, "
                         "load it with tfxmed.runs.load_run, or declare_spec() it")
    return spec


def logits_model(model: keras.Model) -> keras.Model:
    """A view of `model` that outputs its declared pre-activation scores (`ModelSpec.logits_layer`)."""
    layer = _declared(model).logits_layer
    outputs = model.output if layer is None else layer_output(model, layer)
    return keras.Model(model_input(model), outputs, name=f"{model.name}_logits")


def predict_logits(model: keras.Model, images, batch_size: int = 128):
    """The declared logits of `images` as float32 NumPy: a model trained under runtime.mixed_precision computes
    them in bfloat16, which NumPy code and scikit-learn do not read as numbers."""
    import numpy as np

    return np.asarray(logits_model(model).predict(images, batch_size=batch_size, verbose=0), np.float32)


def attention_model(model: keras.Model) -> keras.Model:
    """A view of `model` that outputs its declared attention map [N, h, w, 1] (`ModelSpec.attention_layer`)."""
    layer = _declared(model).attention_layer
    if layer is None:
        raise ValueError(f"model '{model.name}' declares no attention layer (built with attention off?)")
    return keras.Model(model_input(model), layer_output(model, layer), name=f"{model.name}_attention")
