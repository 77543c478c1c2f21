"""scripts/benchmark_volumes.py: both volume models trained on the same data and reported side by side."""

import json
import os
import subprocess
import sys

import pytest

from tests.helpers import REPO


# Two trainings and evaluations (~60 s on 2 cores): `heavy` (`bash scripts/test.sh -m heavy`); both models are
# trained and evaluated in the default run by tests/configs/test_volume_quickstart.py.
@pytest.mark.slow
@pytest.mark.heavy
def test_both_models_get_a_row_of_every_figure(tmp_path):
    result = subprocess.run(
        [sys.executable, os.path.join(REPO, "scripts", "benchmark_volumes.py"),
         "--config", os.path.join(REPO, "configs", "volume_quickstart.yaml"), "--out", str(tmp_path / "out"),
         "--set", f"data.tfrecord_dir={tmp_path / 'data'}", "--set", "data.image_size=16",
         "--set", "data.synthetic.train_examples=24", "--set", "data.synthetic.val_examples=8",
         "--set", "data.synthetic.test_examples=8", "--set", "train.epochs=1", "--set", "model.resnet3d.width=4",
         "--set", "model.cnn_rnn.width=4", "--set", "model.cnn_rnn.units=4", "--set", "explain.method=gradcam"],
        cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout[result.stdout.index("{"):])
    rows = {row["model"]: row for row in report["models"]}
    assert set(rows) == {"resnet3d", "cnn_rnn"}
    assert rows["resnet3d"]["explanation"] == "gradcam@csam"
    assert rows["cnn_rnn"]["explanation"] == "gradcam@slice_features"
    for row in rows.values():
        assert 0.0 <= row["test_auc"] <= 1.0 and 0.0 <= row["pointing_game"] <= 1.0
        assert row["parameters"] > 0 and row["train_seconds"] > 0 and row["inference_ms_per_volume"] > 0
    assert rows["resnet3d"]["parameters"] != rows["cnn_rnn"]["parameters"]
    assert "| cnn_rnn |" in (tmp_path / "out" / "volumes.md").read_text()
