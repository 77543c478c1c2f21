import json
import os
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from tests.helpers import REPO, TINY_CONFIG
from tfxmed.config import load_config
from tfxmed.experiments.ablation import DEFAULT_VARIANTS, run_ablation


def _fake(calls, evaluated, extra=True):
    configs = {}

    def train(config):
        calls.append(config)
        configs[config.runtime.run_dir] = config

    def evaluate(run_dir):
        evaluated.append(run_dir)
        config = configs.get(run_dir) or calls[0]
        # A deterministic function of the variant and seed, so the t-test can be checked by hand.
        bonus = 0.05 * config.model.attention + 0.1 * config.train.consistency.enabled
        seed = config.runtime.seed
        localization = {"iou_mean": 0.1 + bonus, "pointing_game": 0.5 + 0.02 * seed % 5}
        if extra:
            localization.update(deletion_auc=0.3 - bonus, insertion_auc=0.6 + bonus)
        return {"classification": {"accuracy": 0.7 + bonus + 0.01 * (seed % 3), "auc": 0.8 + bonus * seed / 100},
                "localization": localization}
    return train, evaluate


def test_runner_applies_variants_tabulates_paired_tests_and_resumes(tmp_path):
    base = load_config(TINY_CONFIG)
    calls, evaluated = [], []
    report = run_ablation(base, [1, 2, 4], str(tmp_path), *_fake(calls, evaluated))
    assert len(calls) == 12 and len(evaluated) == 12
    enabled = {(c.model.attention, c.train.consistency.enabled) for c in calls}
    assert enabled == {(False, False), (True, False), (False, True), (True, True)}
    assert len({c.runtime.run_dir for c in calls}) == 12 and all(c.train.epochs == base.train.epochs for c in calls)

    summary = report["summary"]
    auc = {name: [row["AUC"] for row in report["runs"][name]] for name in DEFAULT_VARIANTS}
    expected_p = stats.ttest_rel(auc["+attention+L_exp"], auc["backbone"]).pvalue
    assert summary["+attention+L_exp"]["AUC"]["p_vs_backbone"] == pytest.approx(expected_p)
    assert summary["+attention"]["IoU"]["mean"] == pytest.approx(0.15)
    assert summary["backbone"]["AUC"]["sd"] == pytest.approx(np.std(auc["backbone"], ddof=1))
    table = open(tmp_path / "ablation.md").read()
    assert "| +attention+L_exp |" in table and "(p=" in table
    assert json.load(open(tmp_path / "ablation.json"))["seeds"] == [1, 2, 4]

    assert summary["+L_exp"]["deletion"]["mean"] == pytest.approx(0.2)
    again, reevaluated = [], []
    run_ablation(base, [1, 2, 4], str(tmp_path), *_fake(again, reevaluated))
    assert again == [] and reevaluated == []  # every finished run is reused


def test_runner_adds_new_metrics_without_retraining(tmp_path):
    # A run evaluated before deletion/insertion existed: metrics on disk, no new keys.
    old = tmp_path / "backbone" / "seed-1"
    old.mkdir(parents=True)
    old_metrics = {"seed": 1, "ACC": 0.7, "AUC": 0.8, "IoU": 0.1, "pointing game": 0.5}
    (old / "ablation_metrics.json").write_text(json.dumps(old_metrics))
    trained, evaluated = [], []
    metrics = {"classification": {"accuracy": 0.7, "auc": 0.8},
               "localization": {"iou_mean": 0.1, "pointing_game": 0.5, "deletion_auc": 0.3, "insertion_auc": 0.6}}
    report = run_ablation(load_config(TINY_CONFIG), [1], str(tmp_path), trained.append,
                          lambda run_dir: evaluated.append(run_dir) or metrics)
    assert str(old) in evaluated and len(evaluated) == 4
    assert len(trained) == 3 and all(c.runtime.run_dir != str(old) for c in trained)
    assert report["summary"]["backbone"]["insertion"]["mean"] == pytest.approx(0.6)


def _run_tiny(module, tmp_path, *args):
    """Runs `python -m module` on the tiny config for one epoch; returns its JSON summary."""
    result = subprocess.run(
        [sys.executable, "-m", module, "--config", TINY_CONFIG, *args,
         "--set", f"data.tfrecord_dir={tmp_path / 'data'}",
         "--set", "train.epochs=1", "--set", "train.tensorboard_images=0"],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])["summary"]


@pytest.mark.slow
def test_ablate_cli_trains_every_variant(tmp_path):
    summary = _run_tiny("tfxmed.ablate", tmp_path, "--seeds", "1", "--out", str(tmp_path / "ab"))
    assert set(summary) == set(DEFAULT_VARIANTS)
    for name in DEFAULT_VARIANTS:
        assert 0.0 <= summary[name]["AUC"]["mean"] <= 1.0
    assert os.path.exists(tmp_path / "ab" / "plus_attentionplus_L_exp" / "seed-42" / "checkpoints" / "best.keras")


@pytest.mark.slow
def test_crossval_cli_trains_one_model_per_fold(tmp_path):
    summary = _run_tiny("tfxmed.crossval", tmp_path, "--folds", "2", "--out", str(tmp_path / "cv"))
    assert 0.0 <= summary["AUC"]["mean"] <= 1.0 and summary["AUC"]["sd"] >= 0.0
    report = json.load(open(tmp_path / "cv" / "crossval.json"))
    assert set(report["per_fold"]) == {"fold-0", "fold-1"}
    for fold in (0, 1):
        config = open(tmp_path / "cv" / f"fold-{fold}" / "seed-42" / "config.yaml").read()
        assert "cv_folds: 2" in config and f"cv_fold: {fold}" in config
    assert "| AUC |" in open(tmp_path / "cv" / "crossval.md").read()
