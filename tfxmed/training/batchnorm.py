"""Batch-norm statistics recomputed before each validation (`train.batchnorm_batches`).

Keras keeps each BatchNormalization layer's inference statistics as a moving average of the training
batches' (momentum 0.99). While the weights change fast, as in the first few hundred steps from scratch,
that average describes features of weights long gone: a DenseNet121 at 92% training accuracy after 3
passes over PneumoniaMNIST validated at the majority-class rate (validation AUC 0.81), and 0.991 once
its statistics were recomputed (docs/results.md). So, as SWA does for its averaged weights, every
trainable BatchNormalization layer gets the exact mean of its batch statistics over the first N
training batches (eval preprocessing: the distribution validation and serving see), just before each
validation — after `SwapEMAWeights` has put the averaged weights in, so they get their own statistics.
The best checkpoint then holds statistics that match its weights. Frozen layers (`train.freeze_epochs`,
pretrained statistics) are left alone.
"""

from __future__ import annotations

from collections.abc import Iterable

import keras

from tfxmed.models.keras_internals import flatten_layers

__all__ = ["BatchNormStatistics", "recompute_batchnorm_statistics"]


def recompute_batchnorm_statistics(model: keras.Model, batches: Iterable) -> int:
    """Sets every trainable BatchNormalization layer of `model` to the mean of its batch statistics over
    `batches` (image tensors), by forward passes in training mode with momentum k / (k + 1) at batch k.
    Returns the number of layers recomputed (0: nothing to do, and no forward pass)."""
    layers = [layer for layer in flatten_layers(model, include_self=False)
              if isinstance(layer, keras.layers.BatchNormalization) and layer.trainable]
    if not layers:
        return 0
    momenta = [layer.momentum for layer in layers]
    seen = 0
    try:
        for images in batches:
            for layer in layers:  # momentum 0 first: the old statistics are forgotten, not averaged in
                layer.momentum = seen / (seen + 1.0)
            model(images, training=True)
            seen += 1
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum
    if not seen:
        raise ValueError("recompute_batchnorm_statistics: no batch was given")
    return len(layers)


class BatchNormStatistics(keras.callbacks.Callback):
    """Recomputes `model`'s batch-norm statistics on `batches` (a dataset of dicts with `image`, eval
    preprocessing; `count` of them are read) at the start of every validation."""

    def __init__(self, model: keras.Model, batches, count: int):
        super().__init__()
        if count < 1:
            raise ValueError(f"count must be >= 1, got {count}")
        self.classifier, self.batches, self.count = model, batches, count

    def on_test_begin(self, logs=None):
        recompute_batchnorm_statistics(self.classifier, (batch["image"] for batch in self.batches.take(self.count)))
