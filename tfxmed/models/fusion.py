"""Feature fusion: several backbones on one image, their pooled features concatenated before one head.

`model.name: fusion` with `model.fusion.members: [resnet50_attention, densenet121]` builds each member
as it would alone (from its own section of `model`, CSAM included when `model.attention`), copies its
feature extractor onto the shared input with its layers renamed `b<i>_<name>`, pools each branch's
features (global average, `b<i>_pool`) and concatenates them (`fused`) before the usual head
(dropout → `logits` → probabilities).

It is explainable per branch and as a whole: the declared explain layer is the first branch's (e.g.
`b0_csam`), the other branches' are candidates (`explain.method: auto` may pick any of them, and any
CAM method takes `layer=b1_csam`); gradient methods (IG, SmoothGrad) and the fusion explainer explain
the whole model. Each branch's attention map is `b<i>_csam_spatial`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import keras
from keras import layers

from tfxmed.config_choices import POOLINGS
from tfxmed.models.layers import classification_head
from tfxmed.models.spec import ModelSpec, declare_spec, declared_spec

__all__ = ["branch_prefix", "fusion", "fusion_spec", "prefixed_copy"]

POOLING_LAYERS = tuple(f"{kind}_pool" for kind in POOLINGS)  # the head's global pooling (layers.pooling)


def branch_prefix(index: int) -> str:
    return f"b{index}_"


def _prefixed(spec: ModelSpec, index: int) -> tuple[str, str | None]:
    prefix = branch_prefix(index)
    return prefix + spec.explain_layer, (prefix + spec.attention_layer) if spec.attention_layer else None


def fusion_spec(member_specs: Sequence[ModelSpec]) -> ModelSpec:
    """The first branch's explain and attention layers; every other branch's explain layer as a candidate."""
    explain = [_prefixed(spec, index) for index, spec in enumerate(member_specs)]
    return ModelSpec(explain_layer=explain[0][0], attention_layer=explain[0][1],
                     candidate_layers=tuple(layer for layer, _ in explain[1:]))


def _features(member: keras.Model) -> keras.Model:
    """The member without its head: image → the feature map its global pooling (`{kind}_pool`) reads."""
    pooling = next(layer for layer in member.layers if layer.name in POOLING_LAYERS)
    return keras.Model(member.inputs[0], pooling.input, name=f"{member.name}_features")


def prefixed_copy(model: keras.Model, inputs, prefix: str, resize_to: Sequence[int] | None = None):
    """`model` copied onto the symbolic `inputs` with its layers renamed `prefix + name` and its weights
    copied (fusion branches, ensemble members); returns the copy's output tensor.

    `resize_to` (height, width): the copy sees `inputs` resized to it first (`<prefix>resize`, bilinear with
    antialiasing), for a model built for another input size."""
    resized = []

    def renamed(layer):
        return layer.__class__.from_config({**layer.get_config(), "name": prefix + layer.name})

    def call(layer, *args, **kwargs):
        if resize_to is not None and args and args[0] is inputs:
            if not resized:
                resized.append(layers.Resizing(*resize_to, interpolation="bilinear", antialias=True,
                                               name=f"{prefix}resize")(inputs))
            args = (resized[0], *args[1:])
        return layer(*args, **kwargs)

    copy = keras.models.clone_model(model, input_tensors=inputs, clone_function=renamed, call_function=call)
    copy.set_weights(model.get_weights())
    return copy.output


def fusion(members: Sequence[str], build_member: Callable[[str], keras.Model], input_shape: Sequence[int],
           num_classes: int, multi_label: bool = False, dropout: float = 0.3) -> keras.Model:
    """Builds the fusion of `members` (names; `build_member(name)` builds one as a whole classifier)."""
    image = keras.Input(shape=tuple(input_shape), name="image")
    pooled, specs = [], []
    for index, name in enumerate(members):
        member = build_member(name)
        specs.append(declared_spec(member))
        source = _features(member)
        prefix = branch_prefix(index)
        pooled.append(layers.GlobalAveragePooling2D(name=f"{prefix}pool")(prefixed_copy(source, image, prefix)))
    fused = layers.Concatenate(name="fused")(pooled)
    outputs = classification_head(fused, num_classes, multi_label, dropout)
    model = keras.Model(image, outputs, name="fusion_" + "_".join(members))
    return declare_spec(model, fusion_spec(specs))
