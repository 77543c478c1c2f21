"""DenseNet121, EfficientNetB0 and VGG16 from `keras.applications`, with CSAM after their third stage.

Each backbone is copied from `keras.applications` (`keras.models.clone_model` with a `call_function`),
and the copy gets the channel-spatial attention module inserted after the layer that ends its
"block 3", the last stage at 1/16 of the input, as in ResNet50 + CSAM (`conv4_block6_out`):

| backbone | CSAM after | grid | channels |
| --- | --- | --- | --- |
| densenet121 | `conv4_block24_concat` (dense block 3, before transition 3) | 1/16 | 1024 |
| efficientnetb0 | `block5c_add` (stage 5 of 7: the last 1/16 one) | 1/16 | 112 |
| vgg16 | `block4_pool` (after conv block 4; block 5 runs at 1/16) | 1/16 | 512 |

The applications' own input preprocessing layers (EfficientNet's rescaling and normalisation) are left
out: tfxmed's pipeline already standardises images with the training split's μ/σ. Grayscale inputs
are fine; ImageNet weights (RGB) are copied in by layer name with the first kernel summed over colours.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import keras
from keras import layers

from tfxmed.models.layers import channel_spatial_attention, classification_head
from tfxmed.models.spec import ModelSpec, declare_spec
from tfxmed.models.weights import imagenet_file, transfer_weights_by_name

__all__ = ["BACKBONES", "application", "application_spec"]


@dataclasses.dataclass(frozen=True)
class Backbone:
    builder: Callable[..., keras.Model]
    stages: tuple[str, str, str]  # the outputs of stages 1/4, 1/8, 1/16; CSAM follows the last
    weights_file: str  # the ImageNet "notop" weights file keras.applications downloads


BACKBONES = {
    "densenet121": Backbone(keras.applications.DenseNet121,
                            ("conv2_block6_concat", "conv3_block12_concat", "conv4_block24_concat"),
                            "densenet121_weights_tf_dim_ordering_tf_kernels_notop.h5"),
    "efficientnetb0": Backbone(keras.applications.EfficientNetB0, ("block2b_add", "block3b_add", "block5c_add"),
                               "efficientnetb0_notop.h5"),
    "vgg16": Backbone(keras.applications.VGG16, ("block2_pool", "block3_pool", "block4_pool"),
                      "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"),
}
PREPROCESSING = (layers.Rescaling, layers.Normalization)  # inside EfficientNet; tfxmed's pipeline standardises


def _backbone(name: str) -> Backbone:
    if name not in BACKBONES:
        raise ValueError(f"backbone must be one of {', '.join(BACKBONES)}; got '{name}'")
    return BACKBONES[name]


def application_spec(name: str, attention: bool = True) -> ModelSpec:
    """The layers `application(name, attention=...)` declares: CSAM's output and spatial map with
    attention, else the third stage's output; the earlier stages are candidates for `explain.method: auto`."""
    stages = _backbone(name).stages
    if attention:
        return ModelSpec(explain_layer="csam", attention_layer="csam_spatial", candidate_layers=stages)
    return ModelSpec(explain_layer=stages[2], candidate_layers=stages[:2])


def application(
    name: str,
    input_shape: Sequence[int],
    num_classes: int,
    multi_label: bool = False,
    attention: bool = True,
    dropout: float = 0.3,
    weights: str = "none",
    pooling: str = "avg",
    lse_r: float = 5.0,
) -> keras.Model:
    """Builds backbone `name` (+ CSAM after its third stage) → the classification head.

    `weights`: "none", "imagenet" (the notop file must be in Keras' cache; see `tfxmed.models.weights`)
    or a path to a weights file of this very model. The model carries `application_spec(name, attention)`.
    """
    backbone = _backbone(name)
    base = backbone.builder(include_top=False, weights=None, input_shape=tuple(input_shape))
    stage = backbone.stages[2]

    def call(layer, *args, **kwargs):
        if isinstance(layer, PREPROCESSING):
            return args[0]
        output = layer(*args, **kwargs)
        if attention and layer.name == stage:
            output = channel_spatial_attention(output, name="csam")
        return output

    image = keras.Input(shape=tuple(input_shape), name="image")
    features = keras.models.clone_model(base, input_tensors=image, call_function=call).output
    model = keras.Model(image, classification_head(features, num_classes, multi_label, dropout, pooling, lse_r),
                        name=name + ("_attention" if attention else ""))
    if weights == "imagenet":
        reference = backbone.builder(include_top=False, weights=imagenet_file(backbone.weights_file),
                                     input_shape=(*tuple(input_shape)[:2], 3))
        transfer_weights_by_name(reference, model)
    elif weights not in ("none", "", None):
        model.load_weights(weights)
    return declare_spec(model, application_spec(name, attention))
