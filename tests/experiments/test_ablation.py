import json
import os

import numpy as np
import pytest
from scipy import stats

from tests.helpers import TINY_CONFIG, run_tiny_command
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
            localization.update(deletion_auc=0.3 - bonus, insertion_auc=0.6 + bonus, road_morf=0.4 - bonus,
                                road_lerf=0.8)
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
    assert summary["+L_exp"]["ROAD MoRF"]["mean"] == pytest.approx(0.3)
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
               "localization": {"iou_mean": 0.1, "pointing_game": 0.5, "deletion_auc": 0.3, "insertion_auc": 0.6,
                                "road_morf": 0.4, "road_lerf": 0.8}}
    report = run_ablation(load_config(TINY_CONFIG), [1], str(tmp_path), trained.append,
                          lambda run_dir: evaluated.append(run_dir) or metrics)
    assert str(old) in evaluated and len(evaluated) == 4
    assert len(trained) == 3 and all(c.runtime.run_dir != str(old) for c in trained)
    assert report["summary"]["backbone"]["insertion"]["mean"] == pytest.approx(0.6)


@pytest.mark.slow
def test_ablate_cli_trains_every_variant(tmp_path):
    summary = run_tiny_command("tfxmed.ablate", tmp_path, "--seeds", "1", "--out", str(tmp_path / "ab"))
    assert set(summary) == set(DEFAULT_VARIANTS)
    for name in DEFAULT_VARIANTS:
        assert 0.0 <= summary[name]["AUC"]["mean"] <= 1.0
    assert os.path.exists(tmp_path / "ab" / "plus_attentionplus_L_exp" / "seed-42" / "checkpoints" / "best.keras")
