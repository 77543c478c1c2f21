"""`tfxmed.experiments.auto` on generated .npz files of each flavour: search, seeds, ensemble, one test."""

import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

import tfxmed.training
from tests.helpers import COUNTS, REPO, expected_calibration, learnable_npz
from tfxmed.errors import RunDirectoryError
from tfxmed.experiments.auto import auto
from tfxmed.runs import load_run

SEARCH = os.path.join(REPO, "configs", "auto_search.yaml")
TINY = ("train.epochs=1", "train.min_steps=0", "data.image_size=32")  # the shipped space, on a tiny budget


def _auto(npz, out, **kwargs):
    return auto(str(npz), 0.01, str(out), tf.distribute.get_strategy(), seeds=2, search_file=SEARCH,
                overrides=TINY, **kwargs)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["binary", "multi_class", "multi_label"])
def test_auto_searches_ensembles_the_seeds_and_tests_once(tmp_path, rng, kind, monkeypatch):
    monkeypatch.chdir(tmp_path)  # converted records land in ./data
    npz = tmp_path / f"{kind}mnist.npz"
    learnable_npz(npz, rng, kind)
    summary = _auto(npz, tmp_path / "auto")
    # A budget of 0.6 s: one trial (there is always one), then the two seeds.
    assert summary["search_trials"] == 1 and [m["seed"] for m in summary["members"]] == [0, 1]
    assert all(0.0 <= m["best_val_auc"] <= 1.0 for m in summary["members"])
    # The folder is a run like any other: its model is the members' ensemble, evaluated on test.
    run = load_run(str(tmp_path / "auto"))
    assert {"m0_logits", "m1_logits", "logits"} <= {layer.name for layer in run.model.layers}
    metrics = json.load(open(run.paths.metrics))
    assert metrics["split"] == "test" and metrics["classification"]["num_examples"] == COUNTS["test"]
    assert summary["test"]["auc"] == metrics["classification"]["auc"]
    assert metrics["calibration"]["method"] == expected_calibration(kind, metrics["calibration"])
    _resumes(npz, tmp_path, summary, monkeypatch, killed_seed=kind == "binary")


def _resumes(npz, tmp_path, first, monkeypatch, killed_seed):
    # Finished: the recorded summary comes back and the test split is not read again.
    with monkeypatch.context() as patch:
        patch.setattr("tfxmed.evaluation.evaluate_run", lambda *a, **k: pytest.fail("tested twice"))
        assert _auto(npz, tmp_path / "auto") == first
    if killed_seed:  # killed before the second seed: only it trains again; the search and seed 0 are kept
        os.remove(tmp_path / "auto" / "auto_summary.json")
        shutil.rmtree(tmp_path / "auto" / "members" / "seed-1")
        trained = []
        real_train = tfxmed.training.train
        monkeypatch.setattr(tfxmed.training, "train", lambda config, *a, **k: trained.append(config.runtime.run_dir)
                            or real_train(config, *a, **k))
        again = _auto(npz, tmp_path / "auto")
        assert trained == [str(tmp_path / "auto" / "members" / "seed-1")]
        assert again["search_trials"] == first["search_trials"] and again["best_trial"] == first["best_trial"]
    # Another dataset in the same folder is refused, naming the folder.
    other = tmp_path / "other.npz"
    np.savez(other, **{**np.load(npz), "test_labels": 1 - np.load(npz)["test_labels"]})
    with pytest.raises(RunDirectoryError, match="holds an auto run"):
        _auto(other, tmp_path / "auto")
