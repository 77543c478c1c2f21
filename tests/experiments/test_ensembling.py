"""`python -m tfxmed ensemble` (issue 14 §3): mean / weighted / stacking combiners fitted on validation, stacking
cross-fitted, and the ensemble a run like any other: evaluated, and exported and served in a fresh process."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from scipy import special
from sklearn.metrics import roc_auc_score

from tests.helpers import TINY_CONFIG
from tests.test_exporting import _served_in_a_fresh_process
from tfxmed.errors import Refusal
from tfxmed.experiments import ensembling


def _binary_logits(rng, n, members):
    """Validation logits [M, N, 2]: member 0 informative, the others noise."""
    labels = np.eye(2)[np.arange(n) % 2]
    signal = labels[:, 1] * 2.0 - 1.0
    logits = np.zeros((members, n, 2))
    logits[0, :, 1] = 2.0 * signal + rng.normal(0, 1, n)
    logits[1:, :, 1] = rng.normal(0, 2, (members - 1, n))
    return logits, labels


def test_mean_is_the_average_and_weighted_leans_on_the_informative_member(rng):
    logits, labels = _binary_logits(rng, 400, 3)
    mean = ensembling.fit_combiner("mean", logits, labels, multi_label=False)
    np.testing.assert_allclose(mean["kernel"], np.tile(np.eye(2) / 3, (3, 1)))
    np.testing.assert_allclose(mean["val_logits"], logits.mean(0))
    weighted = ensembling.fit_combiner("weighted", logits, labels, multi_label=False)
    assert sum(weighted["weights"]) == pytest.approx(1.0) and min(weighted["weights"]) >= 0
    assert weighted["weights"][0] > 0.8, weighted["weights"]
    joined = np.concatenate(list(logits), axis=1)
    np.testing.assert_allclose(joined @ weighted["kernel"] + weighted["bias"], weighted["val_logits"], atol=1e-9)
    nll = {name: ensembling._nll(fit["val_logits"], labels, False) for name, fit in (("mean", mean),
                                                                                     ("weighted", weighted))}
    assert nll["weighted"] < nll["mean"]


def test_stacking_reports_cross_fitted_validation_figures_not_the_in_sample_ones(rng):
    """30 noise members on 80 images: the in-sample regression looks good, the cross-fitted one does not."""
    logits, labels = _binary_logits(rng, 80, 31)
    logits[0] = rng.normal(0, 2, logits[0].shape)  # no informative member at all
    fitted = ensembling.fit_combiner("stacking", logits, labels, multi_label=False)
    in_sample = np.concatenate(list(logits), axis=1) @ fitted["kernel"] + fitted["bias"]
    target = labels[:, 1]
    assert roc_auc_score(target, in_sample[:, 1]) > 0.8
    assert roc_auc_score(target, fitted["val_logits"][:, 1]) < 0.7
    # With an informative member, the cross-fitted figure is good too, and p(class 1) = σ(c·z + b).
    logits, labels = _binary_logits(rng, 200, 3)
    fitted = ensembling.fit_combiner("stacking", logits, labels, multi_label=False)
    assert roc_auc_score(labels[:, 1], fitted["val_logits"][:, 1]) > 0.85
    assert np.all(fitted["kernel"][:, 0] == 0) and fitted["bias"][0] == 0


def test_multi_label_stacking_combines_each_label_from_the_members_logits_of_that_label(rng):
    n, labels = 300, (rng.random((300, 2)) < 0.5).astype(float)
    logits = np.stack([2 * labels - 1 + rng.normal(0, 1, (n, 2)) for _ in range(2)])
    fitted = ensembling.fit_combiner("stacking", logits, labels, multi_label=True)
    mask = np.tile(np.eye(2), (2, 1)).astype(bool)  # rows m·K + k feed label k only
    assert np.all(fitted["kernel"][~mask] == 0) and np.all(fitted["kernel"][mask] > 0)
    with pytest.raises(Refusal, match="mean, weighted, stacking"):
        ensembling.fit_combiner("vote", logits, labels, multi_label=True)


@pytest.fixture(scope="module")
def members(tmp_path_factory):
    """Two tiny runs of the synthetic benchmark, different seeds (one epoch each)."""
    import tensorflow as tf

    from tfxmed.config import load_config
    from tfxmed.training import train

    root = tmp_path_factory.mktemp("members")
    runs = []
    for seed in (0, 1):
        run_dir = str(root / f"seed-{seed}")
        config = load_config(TINY_CONFIG, [f"runtime.run_dir={run_dir}", f"data.tfrecord_dir={root / 'data'}",
                                           f"runtime.seed={seed}", "train.epochs=1", "train.tensorboard_images=0"])
        train(config, tf.distribute.get_strategy(), verbose=0)
        runs.append(run_dir)
    return runs


def test_the_stacked_ensemble_is_a_run_that_evaluates_exports_and_serves(members, tmp_path, capsys):
    from tfxmed.commands.ensemble import main
    from tfxmed.evaluation import collect_split, evaluate_run
    from tfxmed.exporting import export_run
    from tfxmed.models.factory import logits_model
    from tfxmed.runs import load_run

    out = str(tmp_path / "ensemble")
    assert main(["--runs", *members, "--method", "stacking", "--out", out]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary == json.load(open(os.path.join(out, ensembling.SUMMARY)))
    assert summary["method"] == "stacking" and len(summary["val_auc_members"]) == 2
    assert "cross-fitted" in summary["val_auc_note"] and summary["val_auc_in_sample"] >= summary["val_auc"] - 0.05
    run = load_run(out)
    assert run.config.train.calibration == "none"  # the regression is fitted on validation already
    test = collect_split(run.data_dir, run.manifest, run.config, "test")
    member_logits = np.concatenate([logits_model(load_run(m).model).predict(test["image"], verbose=0)
                                    for m in members], axis=1)
    kernel, bias = run.model.get_layer("logits").get_weights()
    expected = special.softmax(member_logits @ kernel + bias, axis=-1)
    np.testing.assert_allclose(run.model.predict(test["image"], verbose=0), expected, atol=1e-5)
    metrics = evaluate_run(out, "test")
    assert metrics["classification"]["auc"] == pytest.approx(roc_auc_score(test["label"][:, 1], expected[:, 1]),
                                                             abs=1e-4)
    assert metrics["localization"]["num_evaluated"] > 0  # its default explanation is evaluated like any run's
    # Exported and reloaded in a fresh process, it serves the same probabilities.
    path = export_run(out)
    raw = test["image"][:3] * np.asarray(run.manifest["pixel_std"]) + np.asarray(run.manifest["pixel_mean"])
    served = _served_in_a_fresh_process(path, raw.astype("float32"), tmp_path)
    np.testing.assert_allclose(served["serving"], expected[:3], atol=1e-4)


def test_members_of_other_data_or_a_used_folder_are_refused(members, tmp_path, study_run):
    with pytest.raises(Refusal, match="at least 2 runs"):
        ensembling.ensemble(members[:1], "mean", str(tmp_path / "one"))
    with pytest.raises(Refusal, match="same converted data"):
        ensembling.ensemble([members[0], study_run], "mean", str(tmp_path / "mixed"))
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "notes.txt").write_text("mine")
    with pytest.raises(Refusal, match="non-empty folder"):
        ensembling.ensemble(members, "mean", str(tmp_path / "used"))
    assert (tmp_path / "used" / "notes.txt").read_text() == "mine"


def test_members_of_other_input_sizes_are_ensembled_each_at_its_own(members, tmp_path):
    """A member trained at data.image_size=40 on the same data joins one at 32: each is fitted on its own
    pipeline's images, the ensemble run takes 40 px and is evaluated and explained at that size."""
    import tensorflow as tf

    from tfxmed.config import load_config
    from tfxmed.evaluation import evaluate_run
    from tfxmed.runs import load_run
    from tfxmed.training import train

    first = load_run(members[0])
    larger = str(tmp_path / "larger")
    config = load_config(TINY_CONFIG, [f"runtime.run_dir={larger}", f"data.tfrecord_dir={first.data_dir}",
                                       "data.image_size=40", "train.epochs=1", "train.tensorboard_images=0"])
    train(config, tf.distribute.get_strategy(), verbose=0)
    out = str(tmp_path / "mixed_sizes")
    summary = ensembling.ensemble([members[0], larger], "mean", out)
    assert len(summary["val_auc_members"]) == 2 and np.isfinite(summary["val_auc"])
    run = load_run(out)
    assert run.config.data.image_size == 40 and tuple(run.model.inputs[0].shape[1:3]) == (40, 40)
    assert run.model.get_layer("m0_resize").get_config()["height"] == 32
    metrics = evaluate_run(out, "test")
    assert metrics["localization"]["num_evaluated"] > 0 and metrics["localization"]["layer"] == "members"


def test_members_trained_in_bfloat16_are_ensembled(members, tmp_path):
    """runtime.mixed_precision gives bfloat16 logits; the combiner and its validation AUC read them as numbers."""
    import keras

    from tfxmed.config import load_config
    from tfxmed.models import build_model
    from tfxmed.runs import RunPaths, load_run, write_run_info

    mixed = str(tmp_path / "bf16")  # a run whose best checkpoint computes in bfloat16, as training leaves it
    data_dir = load_run(members[0]).data_dir
    config = load_config(TINY_CONFIG, [f"runtime.run_dir={mixed}", f"data.tfrecord_dir={data_dir}",
                                       "runtime.mixed_precision=true"])
    write_run_info(config, mixed, {"data_dir": data_dir})
    os.makedirs(os.path.dirname(RunPaths(mixed).best_checkpoint))
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        build_model(config.model, (32, 32, 1), 2, False).save(RunPaths(mixed).best_checkpoint)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    logits, _ = ensembling._validation_logits([load_run(mixed), load_run(mixed)])  # every member in bfloat16
    assert logits.dtype == np.float32 and np.isfinite(logits).all()
    summary = ensembling.ensemble([mixed, mixed], "mean", str(tmp_path / "ensemble"))
    assert summary["val_auc"] == pytest.approx(summary["val_auc_members"][0]) and 0 <= summary["val_auc"] <= 1
