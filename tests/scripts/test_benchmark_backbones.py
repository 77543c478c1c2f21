"""scripts/benchmark_backbones.py (issue 14): every backbone trained per seed with the same recipe, its row of
figures, and the paired tests against the reference, on a generated .npz at a tiny budget."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.helpers import REPO, learnable_npz
from tfxmed.runs import load_run


# Four tiny trainings and evaluations, then the paired tests re-score them (~100 s on 2 cores): `heavy`, like the
# other minutes-long end-to-end harnesses (`bash scripts/test.sh -m heavy`); the library parts are tested alone.
@pytest.mark.slow
@pytest.mark.heavy
def test_the_backbone_table_has_every_figure_and_the_paired_tests(tmp_path, rng):
    npz = tmp_path / "bands.npz"
    learnable_npz(npz, rng, "binary")
    result = subprocess.run(
        [sys.executable, os.path.join(REPO, "scripts", "benchmark_backbones.py"), "--data", str(npz),
         "--recipe", os.path.join(REPO, "configs", "medmnist.yaml"), "--backbones", "small_cnn", "resnet50_attention",
         "--seeds", "0", "1", "--epochs", "resnet50_attention=1", "--batchnorm-batches", "2",
         "--backbone-set", "small_cnn:runtime.mixed_precision=true",
         "--out", str(tmp_path / "out"),
         "--set", "train.epochs=2", "--set", "train.min_steps=0", "--set", "data.image_size=32",
         "--set", "train.tensorboard_images=0", "--set", "model.resnet50_attention.blocks=[1, 1, 1, 1]",
         "--set", "model.resnet50_attention.width=8"],
        cwd=tmp_path, capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout[result.stdout.index("{"):])
    assert report["reference"] == "small_cnn" and list(report["backbones"]) == ["small_cnn", "resnet50_attention"]
    other = report["backbones"]["resnet50_attention"]
    assert other["epochs"] == 1 and [row["epochs"] for row in other["seeds"]] == [1, 1]  # fewer passes, as asked
    assert "train.batchnorm_batches=2" in other["seeds"][0]["overrides"]  # and recomputed statistics
    assert not any("batchnorm" in key for key in report["backbones"]["small_cnn"]["seeds"][0]["overrides"])
    assert report["backbones"]["small_cnn"]["seeds"][0]["epochs"] == 2
    # --backbone-set reaches its backbone only: small_cnn trains in bfloat16, and the float32 backbone after it in
    # the same process does not inherit the process-global policy
    assert report["backbones"]["small_cnn"]["own_overrides"] == ["runtime.mixed_precision=true"]
    assert "runtime.mixed_precision=true" in report["backbones"]["small_cnn"]["seeds"][1]["overrides"]
    assert not any("mixed_precision" in key for key in other["seeds"][0]["overrides"])
    runs = {backbone: load_run(str(tmp_path / "out" / backbone / "seed-1")) for backbone in
            ("small_cnn", "resnet50_attention-1pass")}
    dtypes = {backbone: {layer.compute_dtype for layer in run.model.layers if layer.weights}
              for backbone, run in runs.items()}
    assert "bfloat16" in dtypes["small_cnn"] and dtypes["resnet50_attention-1pass"] == {"float32"}
    assert other["parameters"] != report["backbones"]["small_cnn"]["parameters"]
    assert other["inference_ms_per_image"] > 0 and other["train_seconds"]["mean"] > 0
    assert 0.5 < report["backbones"]["small_cnn"]["test_auc"]["mean"] <= 1.0
    assert len(other["delong_p_holm"]) == 2 and all(p is None or 0 <= p <= 1 for p in other["delong_p_holm"])
    assert "paired_auc_t_p" in other
    table = (tmp_path / "out" / "backbones.md").read_text()
    assert "| resnet50_attention (1 epochs) |" in table and "| small_cnn (runtime.mixed_precision=true) |" in table
    assert (tmp_path / "out" / "resnet50_attention-1pass" / "seed-1" / "benchmark_row.json").is_file()
    # a finished seed is never reused for another configuration: it is refused, naming the run
    again = subprocess.run(
        [sys.executable, os.path.join(REPO, "scripts", "benchmark_backbones.py"), "--data", str(npz),
         "--recipe", os.path.join(REPO, "configs", "medmnist.yaml"), "--backbones", "small_cnn", "--seeds", "0",
         "--out", str(tmp_path / "out"), "--set", "train.epochs=3"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert again.returncode != 0
    assert "small_cnn/seed-0/benchmark_row.json" in again.stderr and "train.epochs=3" in again.stderr
