"""The classification head every tfxmed backbone ends in."""

from __future__ import annotations

from keras import layers

from tfxmed.models.layers.pooling import global_pooling

__all__ = ["classification_head"]


def classification_head(features, num_classes: int, multi_label: bool, dropout: float, pooling: str = "avg",
                        lse_r: float = 5.0):
    """Global pooling → dropout → Dense `logits` → `probabilities` (softmax, or sigmoid for multi-label).

    Features that are already pooled ([N, C], e.g. the fused features of `tfxmed.models.fusion`) skip
    the pooling. The layer names are the contract the declared `ModelSpec` relies on (`logits`); the probabilities are
    float32 under a mixed-precision policy.
    """
    x = features if len(features.shape) == 2 else global_pooling(features, pooling, lse_r)
    x = layers.Dropout(dropout, name="dropout")(x)
    logits = layers.Dense(num_classes, name="logits")(x)
    return layers.Activation("sigmoid" if multi_label else "softmax", name="probabilities", dtype="float32")(logits)
