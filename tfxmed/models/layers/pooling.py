"""Global pooling heads: average, max, and log-sum-exp (LSE) between them.

With average pooling the logit is the mean of the class activation map, so a lesion covering 1% of
the image moves it little. Max and LSE pooling make the logit follow the strongest location, so the
channels that separate the classes must fire at the lesion and nowhere on a normal image: the pooling
used for weakly supervised localisation on chest X-rays (Wang et al., ChestX-ray8, CVPR 2017,
arXiv:1705.02315; Pinheiro & Collobert, CVPR 2015). On the quick start neither helped within its
8-epoch budget (docs/results.md): Grad-CAM's one blob there came from the downsampling
(`resnet_attention`'s `downsample`), not from the pooling.

LSE_r(x) = max(x) + (1/r)·log(mean(exp(r·(x − max(x))))): r → 0 is the mean, r → ∞ the max.
"""

from __future__ import annotations

import keras
from keras import layers, ops

from tfxmed.config_choices import POOLINGS

__all__ = ["LogSumExpPooling2D", "global_pooling"]


@keras.saving.register_keras_serializable(package="tfxmed")
class LogSumExpPooling2D(layers.Layer):
    """[N, H, W, C] → [N, C]: the numerically stable log-sum-exp over space with sharpness `r`."""

    def __init__(self, r: float = 5.0, **kwargs):
        super().__init__(**kwargs)
        if not r > 0:
            raise ValueError(f"LSE pooling needs r > 0, got {r}")
        self.r = float(r)

    def call(self, inputs):
        axes = tuple(range(1, len(inputs.shape) - 1))  # [N, H, W, C], or [N, D, H, W, C] for volumes
        peak = ops.max(inputs, axis=axes, keepdims=True)
        mean = ops.mean(ops.exp(self.r * (inputs - peak)), axis=axes)
        return ops.squeeze(peak, axis=axes) + ops.log(mean) / self.r

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "r": self.r}


def global_pooling(features, kind: str = "avg", lse_r: float = 5.0):
    """Pools `features` ([N, H, W, C], or volumes [N, D, H, W, C]) over space into a layer named `{kind}_pool`."""
    volume = len(features.shape) == 5
    if kind == "avg":
        return (layers.GlobalAveragePooling3D if volume else layers.GlobalAveragePooling2D)(name="avg_pool")(features)
    if kind == "max":
        return (layers.GlobalMaxPooling3D if volume else layers.GlobalMaxPooling2D)(name="max_pool")(features)
    if kind == "lse":
        return LogSumExpPooling2D(lse_r, name="lse_pool")(features)
    raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}; got '{kind}'")
