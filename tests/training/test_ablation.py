import json
import os
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from tests.conftest import REPO, TINY_CONFIG
from tfxmed.config import load_config
from tfxmed.training.ablation import DEFAULT_VARIANTS, run_ablation


def _fake_train_and_evaluate(calls):
    def run(config):
        calls.append(config)
        # A deterministic function of the variant and seed, so the t-test can be checked by hand.
        bonus = 0.05 * config.model.attention + 0.1 * config.train.consistency.enabled
        seed = config.runtime.seed
        return {"classification": {"accuracy": 0.7 + bonus + 0.01 * (seed % 3), "auc": 0.8 + bonus * seed / 100},
                "localization": {"iou_mean": 0.1 + bonus, "pointing_game": 0.5 + 0.02 * seed % 5}}
    return run


def test_runner_applies_variants_tabulates_paired_tests_and_resumes(tmp_path):
    base = load_config(TINY_CONFIG)
    calls = []
    report = run_ablation(base, [1, 2, 4], str(tmp_path), _fake_train_and_evaluate(calls))
    assert len(calls) == 12
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

    again = []
    run_ablation(base, [1, 2, 4], str(tmp_path), _fake_train_and_evaluate(again))
    assert again == []  # every finished run is reused


@pytest.mark.slow
def test_ablate_cli_trains_every_variant(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "tfxmed.ablate", "--config", TINY_CONFIG, "--seeds", "1", "--out", str(tmp_path / "ab"),
         "--set", f"data.tfrecord_dir={tmp_path / 'data'}", "--set", "train.epochs=1", "--set", "train.tensorboard_images=0"],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])["summary"]
    assert set(summary) == set(DEFAULT_VARIANTS)
    for name in DEFAULT_VARIANTS:
        assert 0.0 <= summary[name]["AUC"]["mean"] <= 1.0
    assert os.path.exists(tmp_path / "ab" / "plus_attentionplus_L_exp" / "seed-42" / "checkpoints" / "best.keras")
