"""Shared fixtures: a tiny converted synthetic dataset, a tiny config and a tiny model."""

from __future__ import annotations

import os

import numpy as np
import pytest

from tests.helpers import TINY_CONFIG

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> str:
    """A converted 32-px synthetic dataset (train 96 / val 32 / test 32) with 2 shards per split."""
    from tfrecords_tools import sources

    out = str(tmp_path_factory.mktemp("tiny_dataset"))
    for _ in sources.convert_synthetic(
        out, image_size=32, counts={"train": 96, "val": 32, "test": 32}, difficulty=0.2,
        shard_examples=48, salt="test-salt",
    ):
        pass
    return out


@pytest.fixture
def tiny_config(tmp_path):
    """The tiny config, writing its run into a temporary folder."""
    from tfxmed.config import load_config

    return load_config(TINY_CONFIG, [f"runtime.run_dir={tmp_path / 'run'}", f"data.tfrecord_dir={tmp_path / 'data'}"])


@pytest.fixture(scope="module")
def tiny_model():
    """The untrained model of the tiny config (small CNN + CSAM, 32×32×1 inputs, 2 classes), seeded.

    Module-scoped: tests may read it freely; a test that changes its weights should build its own.
    """
    import keras

    from tfxmed.config import load_config
    from tfxmed.models import build_model

    keras.utils.set_random_seed(0)
    return build_model(load_config(TINY_CONFIG).model, (32, 32, 1), 2, False)


@pytest.fixture(scope="session")
def manifest_of():
    from tfxmed.storage import load_manifest

    return load_manifest


@pytest.fixture
def rng():
    return np.random.default_rng(0)
