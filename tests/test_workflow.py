"""`tfxmed.workflow.run_all` as `python -m tfxmed demo` runs it (train → evaluate → export → report on the tiny
config), then the separate commands (evaluate, export, explain) on the same run directory, end to end."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.helpers import REPO, TINY_CONFIG


def _run(*args, cwd):
    result = subprocess.run([sys.executable, "-m", *args], cwd=cwd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    return result.stdout


@pytest.mark.slow
def test_demo_pipeline_end_to_end(tmp_path):
    run = tmp_path / "run"
    out = _run("tfxmed", "demo", "--config", TINY_CONFIG, "--set", f"runtime.run_dir={run}",
               "--set", f"data.tfrecord_dir={tmp_path / 'data'}", cwd=REPO)
    summary = json.loads(out[out.index("{"):])
    artefacts = summary["artefacts"]
    for key in ("manifest", "best_checkpoint", "metrics", "overlays", "report"):
        assert os.path.exists(artefacts[key]), key
    assert os.path.exists(os.path.join(artefacts["saved_model"], "saved_model.pb"))
    assert 0.0 <= summary["auc"] <= 1.0
    assert summary["split"] == "test" and summary["explanation"].startswith("gradcam@")
    assert summary["iou"] is not None and 0.0 <= summary["pointing_game"] <= 1.0
    metrics = json.load(open(artefacts["metrics"]))
    local = metrics["localization"]  # the binarisation value is chosen on validation, applied to test
    assert 0.1 <= local["binarize_value_tuned_on_val"] <= 0.9 and 0.0 <= local["iou_mean_val_tuned"] <= 1.0
    assert metrics["classification"]["num_examples"] == 48
    ci = metrics["classification"]["auc_ci"]  # bootstrap 95% CI around the same AUC
    assert ci["estimate"] == pytest.approx(summary["auc"]) and ci["low"] <= ci["estimate"] <= ci["high"]
    cost = metrics["efficiency"]
    import keras

    from tfxmed.models import layers  # noqa: F401  (registers the CSAM layers for loading)

    weights = keras.saving.load_model(artefacts["best_checkpoint"]).weights
    assert cost["parameters"] == sum(int(np.prod(w.shape)) for w in weights)
    assert cost["inference_ms_per_image"] > 0 and cost["explanation_ms_per_image"] > 0
    assert cost["peak_rss_mib"] > 100  # TensorFlow alone takes more than this
    tuned = metrics["classification_at_validation_threshold"]  # Youden threshold from val, applied to test
    assert 0.0 < tuned["threshold"] < 1.0 and tuned["report"]["threshold"] == pytest.approx(tuned["threshold"])
    assert tuned["report"]["auc"] == pytest.approx(summary["auc"])
    assert metrics["localization"]["num_evaluated"] > 0
    assert 0.0 <= metrics["localization"]["average_drop_percent"] <= 100.0
    assert 0.0 <= summary["deletion_auc"] <= 1.0 and 0.0 <= summary["insertion_auc"] <= 1.0

    # The separate entry points work on the same run directory.
    evaluated = json.loads(_run("tfxmed", "evaluate", "--run", str(run), cwd=REPO).strip().splitlines()[-1])
    assert evaluated["auc"] == pytest.approx(summary["auc"])
    export_output = _run("tfxmed", "export", "--run", str(run), "--out", str(tmp_path / "sm"), cwd=REPO)
    exported = json.loads(export_output.strip().splitlines()[-1])
    assert os.path.exists(os.path.join(exported["saved_model"], "saved_model.pb"))

    # Saved explanations for several methods land in one folder with an index.
    methods = "gradcam,gradcampp,ig,lime,fusion"
    explained = json.loads(_run("tfxmed.explain", "--run", str(run), "--methods", methods, "--n", "4",
                                cwd=REPO).strip().splitlines()[-1])
    index = json.load(open(os.path.join(explained["explanations"], "index.json")))
    assert list(index["methods"]) == methods.split(",") and len(index["images"]) == 4
    for method, files in index["methods"].items():
        maps = np.load(os.path.join(explained["explanations"], method, "maps.npz"))["maps"]
        assert maps.shape == (4, 32, 32) and np.isfinite(maps).all()
        assert all(open(os.path.join(explained["explanations"], f), "rb").read(4) == b"\x89PNG" for f in files)
    assert "<img" in open(explained["index"]).read()
    low_output = _run("tfxmed", "explain", "--run", str(run), "--methods", "gradcam", "--n", "4",
                      "--precision", "bfloat16", "--out", str(tmp_path / "bf16"), cwd=REPO)
    low = json.loads(low_output.strip().splitlines()[-1])
    full_maps = np.load(os.path.join(explained["explanations"], "gradcam", "maps.npz"))["maps"]
    low_maps = np.load(os.path.join(low["explanations"], "gradcam", "maps.npz"))["maps"]
    assert full_maps.max() > 0 and np.abs(full_maps - low_maps).mean() < 0.05
