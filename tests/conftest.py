"""Shared fixtures: a tiny converted synthetic dataset, a tiny config and a tiny model, a tiny run and a
synthetic reader study."""

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


@pytest.fixture
def synthetic(tmp_path) -> str:
    """A fresh synthetic reader study (no model): 4 cases × (gradcam, ig, fusion) in a temporary folder."""
    from tfxmed.reader_study.load import synthetic_study

    return synthetic_study(str(tmp_path / "study.db"), cases=4)


@pytest.fixture(scope="session")
def study_run(tmp_path_factory, tiny_dataset) -> str:
    """A run directory of the tiny config whose best checkpoint is the untrained tiny model (no training)."""
    import keras

    from tfxmed.config import load_config
    from tfxmed.models import build_model
    from tfxmed.runs import RunPaths, write_run_info

    run_dir = str(tmp_path_factory.mktemp("study_run") / "run")
    config = load_config(TINY_CONFIG, [f"runtime.run_dir={run_dir}", f"data.tfrecord_dir={tiny_dataset}"])
    write_run_info(config, run_dir, {"data_dir": tiny_dataset})
    os.makedirs(os.path.dirname(RunPaths(run_dir).best_checkpoint))
    keras.utils.set_random_seed(0)
    build_model(config.model, (32, 32, 1), 2, False).save(RunPaths(run_dir).best_checkpoint)
    return run_dir
