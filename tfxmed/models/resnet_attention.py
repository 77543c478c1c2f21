"""ResNet50 (He et al., CVPR 2016, arXiv:1512.03385) with CSAM after the third residual stage.

The backbone is written out here (same layer names as `keras.applications.ResNet50`) so that the
attention module can sit inside it, between `conv4_block6_out` and `conv5_block1`, and so that
ImageNet weights can still be copied in by layer name (grayscale inputs get the RGB stem kernel
summed over its colour axis).
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import layers

from tfxmed.config_choices import DOWNSAMPLES
from tfxmed.models.layers import channel_spatial_attention, classification_head
from tfxmed.models.spec import ModelSpec, declare_spec
from tfxmed.models.weights import imagenet_file, transfer_weights_by_name

__all__ = ["resnet_attention", "resnet_attention_spec"]

IMAGENET_FILE = "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"

BN_EPSILON = 1.001e-5
# 0.9 rather than Keras' 0.99: moving statistics settle within tens of steps, which short
# from-scratch runs need (with 0.99, eval-mode outputs lag far behind training for ~500 steps).
BN_MOMENTUM = 0.9
STAGE_NAMES = ("conv2", "conv3", "conv4", "conv5")


def _bottleneck(x, filters: int, stride: int, conv_shortcut: bool, name: str, downsample: str = "stride"):
    """The v1 bottleneck block (1x1 → 3x3 → 1x1, ×4 expansion) of keras.applications.ResNet50.

    `downsample="avgpool"` halves the grid with a 2 × 2 average pool ahead of both 1x1 convs instead of
    striding them (as ResNet-D does for the shortcut): a strided 1x1 conv keeps the first row and column
    and drops the last, so the zero-padding response of the top and left borders survives every stage
    and the bottom and right ones do not, and the top-left cell ends up 4-5x any other (measured on the
    quick start). Same weights, same cost.
    """
    if stride > 1 and downsample == "avgpool":
        x = layers.AveragePooling2D(stride, name=f"{name}_pool")(x)
        stride = 1
    if conv_shortcut:
        shortcut = layers.Conv2D(4 * filters, 1, strides=stride, name=f"{name}_0_conv")(x)
        shortcut = layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=f"{name}_0_bn")(shortcut)
    else:
        shortcut = x
    x = layers.Conv2D(filters, 1, strides=stride, name=f"{name}_1_conv")(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=f"{name}_1_bn")(x)
    x = layers.Activation("relu", name=f"{name}_1_relu")(x)
    x = layers.Conv2D(filters, 3, padding="same", name=f"{name}_2_conv")(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=f"{name}_2_bn")(x)
    x = layers.Activation("relu", name=f"{name}_2_relu")(x)
    x = layers.Conv2D(4 * filters, 1, name=f"{name}_3_conv")(x)
    # Zero-initialised last γ: each block starts as the identity (Goyal et al., 2017, arXiv:1706.02677),
    # which trains from scratch much faster; ImageNet weights overwrite it.
    x = layers.BatchNormalization(
        epsilon=BN_EPSILON, momentum=BN_MOMENTUM, gamma_initializer="zeros", name=f"{name}_3_bn"
    )(x)
    x = layers.Add(name=f"{name}_add")([shortcut, x])
    return layers.Activation("relu", name=f"{name}_out")(x)


def resnet_attention_spec(attention: bool = True, blocks: Sequence[int] = (3, 4, 6, 3)) -> ModelSpec:
    """The layers `resnet_attention(attention=..., blocks=...)` declares: CSAM's output and its spatial map
    with attention, else the output of the third stage's last block, where CSAM would sit. The first three
    stages' outputs (finer grids) are candidates for `explain.method: auto`."""
    stages = tuple(f"{name}_block{count}_out" for name, count in zip(STAGE_NAMES[:3], blocks[:3]))
    if attention:
        return ModelSpec(explain_layer="csam", attention_layer="csam_spatial", candidate_layers=stages)
    return ModelSpec(explain_layer=stages[2], candidate_layers=stages[:2])


def resnet_attention(
    input_shape: Sequence[int],
    num_classes: int,
    multi_label: bool = False,
    attention: bool = True,
    dropout: float = 0.3,
    blocks: Sequence[int] = (3, 4, 6, 3),
    width: int = 64,
    stem_pool: bool = True,
    weights: str = "none",
    pooling: str = "avg",
    lse_r: float = 5.0,
    downsample: str = "stride",
    name: str = "resnet50_attention",
) -> keras.Model:
    """Builds ResNet50 (+ CSAM after stage 3) → global pooling → dropout → Dense logits → softmax/sigmoid.

    The model carries its `resnet_attention_spec(attention, blocks)` (`tfxmed.models.spec`).

    Args:
        input_shape: (H, W, C); C = 1 for grayscale.
        num_classes: number of outputs.
        multi_label: sigmoid outputs (multi-label) instead of softmax.
        attention: insert the channel-spatial attention module after the third stage.
        dropout: dropout rate before the head.
        blocks: bottleneck blocks per stage ((3, 4, 6, 3) is ResNet50).
        width: filters of the first stage (64 in ResNet50); later stages double it.
        stem_pool: keep the stem's stride-2 max pool (off: feature maps twice as fine, 4x the cost).
        weights: "none", "imagenet" (the notop file in Keras' cache, `tfxmed.models.weights`), or a path to a
            local weights file.
        pooling: the global pooling before the head, "avg" | "max" | "lse" (`tfxmed.models.layers.pooling`).
        lse_r: LSE pooling's sharpness.
        downsample: how stages 3-5 halve the grid: "stride" (ResNet50's strided 1x1 convs) or "avgpool"
            (a 2 x 2 average pool first; see `_bottleneck`).
    """
    if downsample not in DOWNSAMPLES:
        raise ValueError(f"downsample must be one of {', '.join(DOWNSAMPLES)}; got '{downsample}'")
    if len(blocks) != 4:
        raise ValueError(f"blocks must list 4 stages, got {list(blocks)}")
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = layers.ZeroPadding2D(3, name="conv1_pad")(inputs)
    x = layers.Conv2D(width, 7, strides=2, name="conv1_conv")(x)
    x = layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name="conv1_bn")(x)
    x = layers.Activation("relu", name="conv1_relu")(x)
    if stem_pool:
        x = layers.ZeroPadding2D(1, name="pool1_pad")(x)
        x = layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)
    for stage, (stage_name, count) in enumerate(zip(STAGE_NAMES, blocks)):
        filters = width * 2**stage
        for block in range(1, count + 1):
            stride = 2 if (block == 1 and stage > 0) else 1
            x = _bottleneck(x, filters, stride, conv_shortcut=block == 1, name=f"{stage_name}_block{block}",
                            downsample=downsample)
        if stage == 2 and attention:
            x = channel_spatial_attention(x, name="csam")
    outputs = classification_head(x, num_classes, multi_label, dropout, pooling, lse_r)
    model = keras.Model(inputs, outputs, name=name)
    if weights == "imagenet":
        if tuple(blocks) != (3, 4, 6, 3) or width != 64:
            raise ValueError("weights='imagenet' needs the standard ResNet50 (blocks 3,4,6,3, width 64)")
        reference = keras.applications.ResNet50(include_top=False, weights=imagenet_file(IMAGENET_FILE))
        transfer_weights_by_name(reference, model)
    elif weights not in ("none", "", None):
        model.load_weights(weights)
    return declare_spec(model, resnet_attention_spec(attention, blocks))
