"""scripts/benchmark_device.py --quick (issue 17 §6): float32 and mixed precision figures, all present and
positive, beside NVIDIA's published ResNet-50 reference."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.helpers import REPO


@pytest.mark.slow  # ResNet50 + CSAM built, trained and explained twice (tiny sizes): ~1-2 min on 2 shared cores
def test_quick_device_benchmark_prints_every_figure():
    result = subprocess.run([sys.executable, os.path.join("scripts", "benchmark_device.py"), "--quick"], cwd=REPO,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout[result.stdout.index("{"):])
    assert report["quick"] is True and report["device"] == "cpu"
    assert report["mixed_precision_policy"] == "mixed_bfloat16"  # no GPU here
    assert set(report["results"]) == {"float32", "mixed_bfloat16"}
    for figures in report["results"].values():
        assert set(figures) == {"first_step_seconds", "train_images_per_second", "gradcam_images_per_second",
                                "ig_images_per_second"}
        assert all(value > 0 for value in figures.values()), figures
    assert report["reference"]["images_per_second"] == 1770.0 and "A100" in report["reference"]["source"]
