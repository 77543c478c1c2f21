import json
import os
import re
import shutil
import subprocess

import numpy as np
import pytest

from tfxmed.reporting import _audit_section, gallery_cases, reader_study_section, wrap_name


def test_gallery_cases_binary_multiclass_and_multilabel():
    probabilities = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4], [0.45, 0.55]])
    labels = np.array([1, 1, 0, 0, 1])
    cases = gallery_cases(labels, probabilities, multi_label=False, threshold=0.5)
    assert cases == {"tp": [(0, 1, 0.9), (4, 1, 0.55)], "fp": [(2, 1, 0.7)], "fn": [(1, 1, 0.2)]}
    assert gallery_cases(labels, probabilities, False, threshold=0.6)["fn"] == [(1, 1, 0.2), (4, 1, 0.55)]

    three = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.2, 0.5, 0.3]])
    cases = gallery_cases(np.array([0, 1, 1]), three, multi_label=False)
    assert cases["tp"] == [(0, 0, 0.7), (2, 1, 0.5)]
    assert cases["fp"] == [(1, 2, 0.6)] and cases["fn"] == [(1, 1, 0.3)]  # one error: FP of 2, FN of 1

    multi = np.array([[0.9, 0.2], [0.4, 0.8]])
    cases = gallery_cases(np.array([[1, 1], [0, 1]]), multi, multi_label=True)
    assert cases == {"tp": [(0, 0, 0.9), (1, 1, 0.8)], "fp": [], "fn": [(0, 1, 0.2)]}
    assert len(gallery_cases(labels, probabilities, False, per_gallery=1)["tp"]) == 1


def test_the_reader_study_section_is_included_when_results_wrote_it(tmp_path):
    assert reader_study_section(str(tmp_path)) == ""
    (tmp_path / "reader_study.html").write_text('<section id="reader-study">κ</section>', encoding="utf-8")
    assert reader_study_section(str(tmp_path)) == '<section id="reader-study">κ</section>'


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, tiny_dataset):
    import tensorflow as tf

    from tests.helpers import TINY_CONFIG
    from tfxmed.config import load_config
    from tfxmed.training import train

    run = tmp_path_factory.mktemp("report") / "run"
    config = load_config(TINY_CONFIG, [f"runtime.run_dir={run}", f"data.tfrecord_dir={tiny_dataset}", "train.epochs=3"])
    train(config, tf.distribute.get_strategy(), verbose=0)
    return str(run)


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.slow
def test_report_is_self_contained_and_renders_in_headless_chromium(tiny_run, tmp_path):
    from tfxmed.reporting import build_report

    path = build_report(
        tiny_run, methods=("default", "gradcam", "ig"), per_gallery=3, out=str(tmp_path / "report.html"))
    page = open(path, encoding="utf-8").read()
    for section in ("config", "diagnostics", "curves", "explanations", "explanation-diagnostics", "gallery-tp",
                    "gallery-fp", "gallery-fn"):
        assert f'id="{section}"' in page, section
    assert "src=\"file:" not in page and "src=\"http" not in page  # every image is embedded
    images = re.findall(r'<img [^>]*src="data:image/png;base64,', page)
    galleries = len(re.findall(r'class="gallery"', page))
    assert len(images) == 4 + galleries and galleries >= 1  # ROC, PR, calibration, confusion + galleries
    # Which galleries have cases depends on the (non-deterministic, 3-epoch) model: every kind with cases
    # is rendered, every kind without says so.
    from tfxmed import calibration
    from tfxmed.evaluation import collect_split
    from tfxmed.runs import load_run

    run = load_run(tiny_run)
    config, manifest, data_dir, model = run.config, run.manifest, run.data_dir, run.model
    data = collect_split(data_dir, manifest, config, "test")
    metrics = json.load(open(os.path.join(tiny_run, "eval", "metrics.json")))
    threshold = metrics["classification_at_validation_threshold"]["threshold"]
    # The report's probabilities are calibrated (the validation threshold is on that scale too).
    fitted = calibration.run_calibration(run, lambda: pytest.fail("the report should have fitted it"))
    probabilities = calibration.predict(model, data["image"], fitted, False)
    cases = gallery_cases(data["label"].argmax(-1), probabilities, False, threshold, 3)
    assert galleries == sum(bool(c) for c in cases.values())
    assert page.count("No such cases.") == sum(not c for c in cases.values())
    assert re.search(r'<td>gradcam</td><td>\d+</td><td>\d\.\d{3}</td>', page)  # explanation metrics, per method
    assert "<td>ig</td>" in page and "AUC (macro)" in page and "95% CI" in page
    assert "<td>gradcam@csam (default)</td>" in page and "Spearman, all randomised" in page

    browser = _chromium()
    if browser is None:
        pytest.skip("no Chromium on this machine (scripts/test.sh installs Debian's chromium when it can)")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000"]
    dom = subprocess.run([browser, *flags, "--dump-dom", f"file://{path}"], capture_output=True, text=True,
                         timeout=120).stdout
    loaded = re.search(r'data-images-loaded="(\d+)" data-images-total="(\d+)"', dom)
    assert loaded, dom[:500]
    assert int(loaded.group(1)) == int(loaded.group(2)) == len(images)  # every embedded PNG decoded
    for section in ("diagnostics", "gallery-tp", "explanations"):
        assert f'id="{section}"' in dom
    screenshot = tmp_path / "report.png"
    subprocess.run([browser, *flags, f"--screenshot={screenshot}", "--window-size=1200,2400", f"file://{path}"],
                   capture_output=True, timeout=120)
    assert screenshot.exists() and screenshot.stat().st_size > 10_000


def test_report_names_a_missing_run(tmp_path, capsys):
    from tfxmed.commands.report import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--run", str(tmp_path / "nothing")])
    assert exit_info.value.code == 2 and "config.yaml not found" in capsys.readouterr().err


def test_near_constant_maps_raise_the_warning(rng):
    import keras

    from tfxmed.default_explanation import Choice
    from tfxmed.explain.sanity import diagnose
    from tfxmed.reporting import _diagnostics_section

    inputs = keras.Input((8, 8, 1))
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(inputs)))
    blob = np.zeros((8, 8), np.float32)
    blob[2:5, 3:6] = 1.0
    constant = lambda m: (lambda images, targets: np.repeat(blob[None], len(images), 0))  # noqa: E731
    moving = lambda m: (lambda images, targets: images[..., 0])  # noqa: E731
    images = rng.random((6, 8, 8, 1)).astype("float32")
    results = {"constant": diagnose(model, constant, images, np.zeros(6, int), checkpoints=2),
               "moving": diagnose(model, moving, images, np.zeros(6, int), checkpoints=2)}
    assert results["constant"]["near_constant"] and not results["moving"]["near_constant"]
    section = _diagnostics_section(results, Choice("gradcam", "features"), 6)
    assert 'data-method="constant"' in section and 'data-method="moving"' not in section


def test_long_method_names_wrap_before_their_options_and_short_ones_stay_whole():
    name = "ig[baseline=blurred][blur_sigma=2][steps=16][smoothing_sigma=1.5] (default)"
    lines = wrap_name(name).split("\n")
    assert "".join(lines) == name and len(lines) > 1
    assert all(line.startswith("[") for line in lines[1:]) and all(len(line) <= 32 for line in lines)
    assert wrap_name("gradcam") == "gradcam"


def test_the_audit_section_shows_false_alarms_beside_recall_and_precision():
    method = {"threshold": 0.3, "threshold_chosen_by": "best F1", "recall": 0.95, "precision": 0.9, "flag_rate": 0.4,
              "false_alarm_rate": 0.0375, "flag_rate_without_cue": 0.02, "mean_mass": {"cue": 0.6, "lesion": 0.1}}
    audit = {"split": "test", "images": 400, "images_with_cue": 200, "shortcut_driven": 180, "auc_with_cue": 0.9,
             "auc_without_cue": 0.6, "methods": {"ig": method}}
    section = _audit_section(audit)
    header, values = section.split("</thead>")
    columns = [c.split("</th>")[0] for c in header.split("<th>")[1:]]
    cells = [c.split("</td>")[0] for c in values.split("<td>")[1:]]
    assert dict(zip(columns, cells))["false alarms (not cue-driven)"] == "0.037"
    assert _audit_section(None) == ""
