"""scripts/benchmark_medmnist.py's pieces that decide what a figure means (issue 19 §2, §5): the stratified
training subset and the flag on a seed that lags on validation. The training itself is tests/configs."""

from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest

from tests.helpers import REPO


@pytest.fixture(scope="module")
def benchmark():
    spec = importlib.util.spec_from_file_location("benchmark_medmnist",
                                                  os.path.join(REPO, "scripts", "benchmark_medmnist.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_training_subset_is_stratified_fixed_and_leaves_val_and_test_alone(benchmark, tmp_path, rng):
    labels = (rng.random(400) < 0.25).astype(np.int64).reshape(-1, 1)  # 25% positive, like a rare finding
    source = tmp_path / "data.npz"
    np.savez(source, train_images=np.arange(400 * 4, dtype=np.uint8).reshape(400, 2, 2), train_labels=labels,
             val_images=np.zeros((30, 2, 2), np.uint8), val_labels=np.ones((30, 1)),
             test_images=np.ones((20, 2, 2), np.uint8), test_labels=np.zeros((20, 1)))
    first = np.load(benchmark.train_subset(str(source), 100, str(tmp_path / "a")))
    second = np.load(benchmark.train_subset(str(source), 100, str(tmp_path / "b")))
    assert first["train_labels"].shape == (100, 1)
    assert first["train_labels"].mean() == pytest.approx(labels.mean(), abs=0.01)  # the class balance is kept
    np.testing.assert_array_equal(first["train_images"], second["train_images"])  # the same subset every run
    for key in ("val_images", "val_labels", "test_images", "test_labels"):
        np.testing.assert_array_equal(first[key], np.load(source)[key])
    with pytest.raises(SystemExit, match="--train-subset 400"):
        benchmark.train_subset(str(source), 400, str(tmp_path / "c"))


def test_a_seed_that_lags_on_validation_is_named_not_averaged_away(benchmark):
    rows = [{"seed": 0, "best_val_auc": 0.991}, {"seed": 1, "best_val_auc": 0.93}, {"seed": 2, "best_val_auc": 0.99}]
    assert benchmark.val_outliers(rows) == [1]
    assert benchmark.val_outliers(rows[::2]) == []
    assert benchmark.val_outliers([{"seed": 0, "best_val_auc": 0.5}, {"seed": 1, "best_val_auc": None}]) == []
