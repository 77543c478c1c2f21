"""A 3-D ResNet with 3-D CSAM for volumes [N, D, H, W, C] (issue 15).

    stem: symmetric zero padding, Conv3D 3 × 4 × 4 at stride 1 × 2 × 2 (slices are often thicker than
          pixels) → BN → ReLU
    stages 1..4: basic residual blocks (two Conv3D 3³ + BN, projection shortcut when the width changes);
                 stage 1 keeps the grid, each later stage first halves every axis with a 2³ average pool;
                 width doubles per stage
    CSAM after stage 3 (`csam`; its spatial map `csam_spatial` is a volume) → stage 4 → the shared head

Basic blocks (not bottlenecks) keep it small enough to train on a CPU: 64³ volumes at the default
width 16 and one block per stage are about 1.2 M parameters. The declared explain layer is `csam`
(or the third stage's output without attention), a grid at 1/8 of the input in-plane and 1/4 along
the slices, which the CAM family upsamples back to the volume.

A strided 'same' 3³ convolution on an even grid pads one side only (TensorFlow puts the odd pixel of
padding after), so the old stem saw its two borders differently. Every padding here is symmetric, so a
mirrored volume gives mirrored features (tested). This did not make Grad-CAM at `csam` localise: its
maps still peak on the border cells of the 4³ grid, now on both sides (docs/results.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import layers

from tfxmed.models.layers import channel_spatial_attention, classification_head
from tfxmed.models.spec import ModelSpec, declare_spec

__all__ = ["resnet3d", "resnet3d_spec"]


def _stage_name(index: int) -> str:
    return f"stage{index}_out"


def resnet3d_spec(attention: bool = True) -> ModelSpec:
    stages = (_stage_name(1), _stage_name(2), _stage_name(3))
    if attention:
        return ModelSpec(explain_layer="csam", attention_layer="csam_spatial", candidate_layers=stages)
    return ModelSpec(explain_layer=stages[2], candidate_layers=stages[:2])


def _block(x, filters: int, downsample: bool, name: str):
    if downsample:  # a 2³ average pool, not a strided convolution (see the module docstring)
        x = layers.AveragePooling3D(2, name=f"{name}_pool")(x)
    shortcut = x
    y = layers.Conv3D(filters, 3, padding="same", use_bias=False, name=f"{name}_1_conv")(x)
    y = layers.ReLU(name=f"{name}_1_relu")(layers.BatchNormalization(name=f"{name}_1_bn")(y))
    y = layers.Conv3D(filters, 3, padding="same", use_bias=False, name=f"{name}_2_conv")(y)
    y = layers.BatchNormalization(name=f"{name}_2_bn")(y)
    if x.shape[-1] != filters:
        shortcut = layers.Conv3D(filters, 1, use_bias=False, name=f"{name}_0_conv")(x)
        shortcut = layers.BatchNormalization(name=f"{name}_0_bn")(shortcut)
    return layers.Add(name=f"{name}_add")([shortcut, y])


def resnet3d(
    input_shape: Sequence[int],
    num_classes: int,
    multi_label: bool = False,
    attention: bool = True,
    dropout: float = 0.3,
    blocks: Sequence[int] = (1, 1, 1, 1),
    width: int = 16,
    weights: str = "none",
    pooling: str = "avg",
    lse_r: float = 5.0,
) -> keras.Model:
    """Builds the 3-D ResNet (`blocks` residual blocks in each of the 4 stages) for [D, H, W, C] inputs."""
    if len(input_shape) != 4:
        raise ValueError(f"resnet3d takes volumes [D, H, W, C], got input shape {tuple(input_shape)}")
    volume = keras.Input(tuple(input_shape), name="image")
    # One voxel of zeros on every side, then a 3 × 4 × 4 kernel at stride 1 × 2 × 2: on an even grid the
    # first and the last window each cover one padded voxel, so neither border is special.
    x = layers.ZeroPadding3D(1, name="stem_pad")(volume)
    x = layers.Conv3D(width, (3, 4, 4), strides=(1, 2, 2), use_bias=False, name="stem_conv")(x)
    x = layers.ReLU(name="stem_relu")(layers.BatchNormalization(name="stem_bn")(x))
    for stage, count in enumerate(blocks, start=1):
        for index in range(count):
            x = _block(x, width * 2 ** (stage - 1), stage > 1 and index == 0, f"stage{stage}_block{index + 1}")
            x = layers.ReLU(name=_stage_name(stage) if index == count - 1 else f"stage{stage}_block{index + 1}_out")(x)
        if stage == 3 and attention:
            x = channel_spatial_attention(x, name="csam", kernel_size=3)
    model = keras.Model(volume, classification_head(x, num_classes, multi_label, dropout, pooling, lse_r),
                        name="resnet3d" + ("_attention" if attention else ""))
    if weights not in ("none", "", None):
        if weights == "imagenet":
            raise ValueError("model.weights: 'imagenet' has no 3-D weights; use none or a weights file of this model")
        model.load_weights(weights)
    return declare_spec(model, resnet3d_spec(attention))
