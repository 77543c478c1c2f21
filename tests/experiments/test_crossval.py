"""k-fold cross-validation (`tfxmed.experiments.crossval`): one run per fold with that fold's config, mean ± sd
over folds, finished folds kept on a re-run, and the command end to end."""

import json

import pytest

from tests.helpers import TINY_CONFIG, run_tiny_command
from tfxmed.config import load_config
from tfxmed.errors import Refusal
from tfxmed.experiments import crossval as crossval_module
from tfxmed.experiments.crossval import crossval


def test_each_fold_trains_its_own_config_and_the_summary_is_over_folds(tmp_path, monkeypatch):
    trained, evaluated = [], []
    fold_of = {}

    def train(config, strategy, verbose, overwrite):
        trained.append((config.data.cv_folds, config.data.cv_fold))
        fold_of[config.runtime.run_dir] = config.data.cv_fold

    def evaluate_run(run_dir, split):
        evaluated.append(split)
        fold = fold_of[run_dir]
        return {"classification": {"accuracy": 0.6 + 0.1 * fold, "auc": 0.7 + 0.1 * fold},
                "localization": {"iou_mean": 0.2, "pointing_game": 0.5 * fold, "deletion_auc": 0.3,
                                 "insertion_auc": 0.6, "road_morf": 0.4, "road_lerf": 0.8}}

    monkeypatch.setattr(crossval_module, "train", train)
    monkeypatch.setattr(crossval_module, "evaluate_run", evaluate_run)
    result = crossval(load_config(TINY_CONFIG), None, 3, str(tmp_path))
    assert trained == [(3, 0), (3, 1), (3, 2)] and evaluated == ["test"] * 3  # each fold scored on the test split
    assert list(result["per_fold"]) == ["fold-0", "fold-1", "fold-2"]
    assert result["summary"]["AUC"] == {"mean": pytest.approx(0.8), "sd": pytest.approx(0.1)}
    assert result["summary"]["IoU"] == {"mean": pytest.approx(0.2), "sd": pytest.approx(0.0)}
    assert json.load(open(tmp_path / "crossval.json"))["summary"] == json.loads(json.dumps(result["summary"]))
    table = open(result["table"]).read()
    assert "| AUC | 0.800 ± 0.100 |" in table and "| pointing game | 0.500 ± 0.500 |" in table

    trained.clear()
    evaluated.clear()
    assert crossval(load_config(TINY_CONFIG), None, 3, str(tmp_path))["summary"] == result["summary"]
    assert trained == [] and evaluated == []  # finished folds are kept


def test_variants_run_on_the_same_folds_and_are_tested_against_the_base_fold_by_fold(tmp_path, monkeypatch):
    """A variant whose AUC is higher on every fold by a fold-varying margin: the paired tests across folds
    see it (t-test on the per-fold differences), and each variant's folds carry its overrides."""
    trained = []

    def train(config, strategy, verbose, overwrite):
        trained.append((config.train.label_smoothing, config.data.cv_fold, config.runtime.run_dir))

    def evaluate_run(run_dir, split):
        smoothing, fold, _ = next(row for row in trained if row[2] == run_dir)
        gain = (0.02 + 0.01 * fold) if smoothing == 0.0 else 0.0
        return {"classification": {"accuracy": 0.7, "auc": 0.6 + 0.1 * fold + gain},
                "localization": {"iou_mean": 0.2, "pointing_game": 0.5, "deletion_auc": 0.3,
                                 "insertion_auc": 0.6, "road_morf": 0.4, "road_lerf": 0.8 + 0.01 * fold}}

    monkeypatch.setattr(crossval_module, "train", train)
    monkeypatch.setattr(crossval_module, "evaluate_run", evaluate_run)
    config = load_config(TINY_CONFIG, ["train.label_smoothing=0.1"])
    result = crossval(config, None, 4, str(tmp_path), {"no_smoothing": ["train.label_smoothing=0.0"]})
    assert sorted((s, f) for s, f, _ in trained) == [(0.0, k) for k in range(4)] + [(0.1, k) for k in range(4)]
    assert all(f"{'no_smoothing' if s == 0.0 else 'base'}/fold-{f}/" in run for s, f, run in trained)
    paired = result["paired"]["no_smoothing"]
    assert paired["AUC"]["mean_difference"] == pytest.approx(0.035)
    assert paired["AUC"]["t_p_value"] == pytest.approx(0.01231, abs=1e-5)
    assert paired["AUC"]["wilcoxon_p_value"] == pytest.approx(0.125)  # 4 positive differences: 2 / 2^4
    assert paired["ACC"]["t_p_value"] is None  # no difference on any fold: nothing to test
    assert result["summary"] == result["variants"]["base"]["summary"]
    table = open(result["table"]).read()
    assert "no_smoothing vs base: t p / Wilcoxon p" in table
    assert "| ACC | 0.700 ± 0.000 | 0.700 ± 0.000 | – / – |" in table
    with pytest.raises(Refusal, match="'base' is taken"):
        crossval(config, None, 4, str(tmp_path / "other"), {"base": ["train.epochs=2"]})


@pytest.mark.slow
def test_crossval_cli_trains_one_model_per_fold(tmp_path):
    summary = run_tiny_command("tfxmed.crossval", tmp_path, "--folds", "2", "--out", str(tmp_path / "cv"))
    assert 0.0 <= summary["AUC"]["mean"] <= 1.0 and summary["AUC"]["sd"] >= 0.0
    report = json.load(open(tmp_path / "cv" / "crossval.json"))
    assert set(report["per_fold"]) == {"fold-0", "fold-1"}
    for fold in (0, 1):
        config = open(tmp_path / "cv" / f"fold-{fold}" / "seed-42" / "config.yaml").read()
        assert "cv_folds: 2" in config and f"cv_fold: {fold}" in config
    assert "| AUC |" in open(tmp_path / "cv" / "crossval.md").read()
