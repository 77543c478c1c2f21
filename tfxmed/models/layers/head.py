"""The classification head every tfxmed backbone ends in."""

from __future__ import annotations

import keras
from keras import layers, ops

from tfxmed.models.layers.pooling import global_pooling

__all__ = ["GroupSoftmax", "classification_head", "label_groups_of", "with_group_softmax"]


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


def _check_groups(groups, num_outputs: int | None = None) -> list[list[int]]:
    groups = [[int(index) for index in group] for group in groups]
    flat = sorted(index for group in groups for index in group)
    if not groups or any(len(group) < 2 for group in groups) or len(set(flat)) != len(flat) or (
            num_outputs is not None and flat != list(range(num_outputs))):
        raise ValueError(f"label_groups must split the {num_outputs or 'model'} outputs into disjoint groups of >= 2 "
                         f"covering each output once, got {groups}")
    return groups


@keras.saving.register_keras_serializable(package="tfxmed")
class GroupSoftmax(layers.Layer):
    """A softmax within each group of outputs (CheXpert U-MultiClass: negative / positive / uncertain per
    observation, `label_groups` in the manifest); outputs keep their order. Static gathers only (XLA-friendly)."""

    def __init__(self, groups, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.groups = _check_groups(groups)
        order = [index for group in self.groups for index in group]
        self._inverse = [order.index(k) for k in range(len(order))]

    def call(self, logits):
        logits = ops.cast(logits, "float32")
        parts = [ops.softmax(ops.take(logits, group, axis=-1), axis=-1) for group in self.groups]
        return ops.take(ops.concatenate(parts, axis=-1), self._inverse, axis=-1)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "groups": self.groups}


def with_group_softmax(model: keras.Model, groups) -> keras.Model:
    """`model` (whose `logits` layer precedes its final activation) ending in a `GroupSoftmax` instead."""
    logits = model.get_layer("logits").output
    groups = _check_groups(groups, int(logits.shape[-1]))
    return keras.Model(model.inputs, GroupSoftmax(groups, name="probabilities")(logits), name=model.name)


def label_groups_of(model: keras.Model) -> list[list[int]] | None:
    """The groups of a model ending in `GroupSoftmax`, else None (softmax or independent sigmoids)."""
    last = model.layers[-1]
    return last.groups if isinstance(last, GroupSoftmax) else None
