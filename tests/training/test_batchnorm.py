"""Batch-norm statistics recomputed before validation (train.batchnorm_batches)."""

import dataclasses

import keras
import numpy as np
import pytest

from tfxmed import distribute
from tfxmed.data import pipeline
from tfxmed.models.keras_internals import flatten_layers
from tfxmed.storage import load_manifest
from tfxmed.training import train
from tfxmed.training.batchnorm import recompute_batchnorm_statistics


def test_statistics_are_the_mean_of_the_batch_statistics_and_frozen_layers_keep_theirs(rng):
    inputs = keras.Input((4,))
    first, frozen = keras.layers.BatchNormalization(name="first"), keras.layers.BatchNormalization(name="frozen")
    model = keras.Model(inputs, keras.layers.Dense(2)(frozen(first(inputs))))
    first.moving_mean.assign(np.full(4, 100.0, "float32"))  # stale statistics, as after fast-changing weights
    frozen.moving_mean.assign(np.arange(4, dtype="float32"))
    frozen.trainable = False
    batches = [rng.normal(3.0, 2.0, size=(16, 4)).astype("float32") for _ in range(5)]
    assert recompute_batchnorm_statistics(model, batches) == 1
    np.testing.assert_allclose(first.moving_mean.numpy(), np.mean([b.mean(0) for b in batches], 0), rtol=1e-5)
    np.testing.assert_allclose(first.moving_variance.numpy(), np.mean([b.var(0) for b in batches], 0), rtol=1e-4)
    np.testing.assert_array_equal(frozen.moving_mean.numpy(), np.arange(4))
    assert first.momentum == frozen.momentum == 0.99  # restored
    with pytest.raises(ValueError, match="no batch"):
        recompute_batchnorm_statistics(model, [])


@pytest.mark.slow
def test_the_best_checkpoint_holds_the_statistics_of_its_own_averaged_weights(tiny_config):
    train_config = dataclasses.replace(tiny_config.train, ema_momentum=0.5, batchnorm_batches=2, epochs=2,
                                       tensorboard_images=0)
    config = dataclasses.replace(tiny_config, train=train_config)
    result = train(config, distribute.make_strategy("cpu"), verbose=0)
    model = keras.saving.load_model(result.best_checkpoint)
    layers = [layer for layer in flatten_layers(model) if isinstance(layer, keras.layers.BatchNormalization)]
    assert layers
    saved = [(layer.moving_mean.numpy(), layer.moving_variance.numpy()) for layer in layers]
    manifest = load_manifest(result.data_dir)
    batches = pipeline.build_dataset(result.data_dir, manifest, "train", config.data, False, config.data.batch_size)
    recompute_batchnorm_statistics(model, (batch["image"] for batch in batches.take(2)))
    for layer, (mean, variance) in zip(layers, saved):  # recomputed from the checkpoint's (EMA) weights
        np.testing.assert_allclose(layer.moving_mean.numpy(), mean, rtol=1e-4, atol=1e-5, err_msg=layer.name)
        np.testing.assert_allclose(layer.moving_variance.numpy(), variance, rtol=1e-4, atol=1e-5, err_msg=layer.name)


def test_multiworker_and_tpu_are_refused():
    from tests.helpers import TINY_CONFIG
    from tfxmed.config import ConfigError, load_config

    for strategy in ("multiworker", "tpu"):
        with pytest.raises(ConfigError, match="train.batchnorm_batches"):
            load_config(TINY_CONFIG, ["train.batchnorm_batches=4", f"runtime.strategy={strategy}"])
