"""scripts/compare_monitors.py: the epoch each checkpoint rule keeps, read from history.csv alone."""

from __future__ import annotations

import csv
import importlib.util
import os

import pytest

from tests.helpers import REPO


@pytest.fixture(scope="module")
def script():
    path = os.path.join(REPO, "scripts", "compare_monitors.py")
    spec = importlib.util.spec_from_file_location("compare_monitors", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _history(run_dir, rows) -> str:
    os.makedirs(run_dir)
    with open(os.path.join(run_dir, "history.csv"), "w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(["epoch", "loss", "seconds", "val_accuracy", "val_auc", "val_loss"])
        for epoch, (accuracy, auc, loss) in enumerate(rows):
            writer.writerow([epoch, 0.3, 30.0, accuracy, auc, loss])
    return str(run_dir)


def test_each_rule_keeps_its_epoch_and_groups_are_parent_folders(script, tmp_path):
    # Seed 0: the AUC peaks mid-schedule on an epoch whose decision is off; the loss picks a later one.
    first = _history(tmp_path / "bench" / "seed-0", [(0.70, 0.95, 0.60), (0.83, 0.992, 0.42), (0.94, 0.991, 0.28),
                                                     (0.92, 0.990, 0.30)])
    second = _history(tmp_path / "bench" / "seed-1", [(0.90, 0.990, 0.33), (0.93, 0.993, 0.29), (0.91, 0.991, 0.31)])
    other = _history(tmp_path / "other" / "seed-0", [(0.80, 0.98, 0.40)])
    result = script.compare([first, second, other], low_acc=0.87)
    bench = result[str(tmp_path / "bench")]
    assert bench["val_auc"]["epochs"] == [1, 1] and bench["val_loss"]["epochs"] == [2, 1]
    assert bench["last"]["epochs"] == [3, 2]
    assert bench["val_auc"]["val_accuracy"]["mean"] == pytest.approx((0.83 + 0.93) / 2)
    assert bench["val_loss"]["val_accuracy"]["mean"] == pytest.approx((0.94 + 0.93) / 2)
    assert bench["val_loss"]["val_auc"]["mean"] == pytest.approx((0.991 + 0.993) / 2)
    assert bench["val_loss"]["val_loss"]["mean"] == pytest.approx((0.28 + 0.29) / 2)
    assert bench["val_auc"]["val_loss"]["mean"] == pytest.approx((0.42 + 0.29) / 2)
    assert bench["val_auc"]["low_accuracy_runs"] == 1 and bench["val_loss"]["low_accuracy_runs"] == 0
    assert result[str(tmp_path / "other")]["val_loss"]["runs"] == 1


def test_a_folder_without_a_usable_history_is_named(script, tmp_path):
    with pytest.raises(SystemExit, match="no such file"):
        script.compare([str(tmp_path / "missing")], 0.87)
    os.makedirs(tmp_path / "old")
    (tmp_path / "old" / "history.csv").write_text("epoch,loss,val_loss\n0,0.5,0.4\n", encoding="utf-8")
    with pytest.raises(SystemExit, match=r"history.csv: expected epochs with columns .*missing \['val_accuracy'"):
        script.compare([str(tmp_path / "old")], 0.87)
