"""The shortcut audit on hand-built models whose answer is known: one decides on the corner marker
only, the other never looks at it."""

import os

import keras
import numpy as np
import pytest

from tests.helpers import TINY_CONFIG
from tfrecords_tools import sources
from tfxmed.config import load_config
from tfxmed.data.synthetic import marker_region
from tfxmed.runs import RunPaths, write_run_info
from tfxmed.shortcut_audit import audit_run, draw_marker, remove_cue

SIZE = 32


@pytest.fixture(scope="module")
def marked_dataset(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("marked"))
    for _ in sources.convert_synthetic(out, image_size=SIZE, counts={"train": 32, "val": 48, "test": 64},
                                       difficulty=0.2, confounder_strength=0.9, shard_examples=64, salt="test"):
        pass
    return out


def _looking_at(crop) -> keras.Model:
    """x → 1x1 conv `features` (weight 1) → crop → mean → logits [0, 2·mean] → softmax."""
    inputs = keras.Input((SIZE, SIZE, 1))
    features = keras.layers.Conv2D(1, 1, use_bias=False, name="features")(inputs)
    pooled = keras.layers.GlobalAveragePooling2D()(keras.layers.Cropping2D(crop)(features))
    logits = keras.layers.Dense(2, name="logits")(pooled)
    model = keras.Model(inputs, keras.layers.Activation("softmax", name="probabilities")(logits))
    model.get_layer("features").set_weights([np.ones((1, 1, 1, 1), np.float32)])
    model.get_layer("logits").set_weights([np.array([[0.0, 2.0]], np.float32), np.array([0.0, -1.0], np.float32)])
    return model


def _run(tmp_path, name, data_dir, model) -> str:
    run_dir = str(tmp_path / name)
    config = load_config(TINY_CONFIG, [f"runtime.run_dir={run_dir}", f"data.tfrecord_dir={data_dir}",
                                       "data.image_size=32", "explain.layer=features"])
    write_run_info(config, run_dir, {"data_dir": data_dir})
    os.makedirs(os.path.dirname(RunPaths(run_dir).best_checkpoint))
    model.save(RunPaths(run_dir).best_checkpoint)
    return run_dir


def test_marker_removal_and_drawing():
    images = np.zeros((2, SIZE, SIZE, 1), np.float32)
    marked, regions = draw_marker(images, {"pixel_mean": [0.3], "pixel_std": [0.2]})
    rows, columns = marker_region(SIZE)
    assert regions[:, rows, columns].all() and regions.sum() == 2 * 9
    np.testing.assert_allclose(marked[0, rows, columns], (0.93 - 0.3) / 0.2)
    np.testing.assert_allclose(remove_cue(marked, regions), 0.0, atol=1e-5)  # flat surroundings: filled flat


def test_audit_catches_the_model_that_reads_the_marker(tmp_path, marked_dataset):
    rows, columns = marker_region(SIZE)
    crop = ((rows.start, SIZE - rows.stop), (columns.start, SIZE - columns.stop))
    run_dir = _run(tmp_path, "cheat", marked_dataset, _looking_at(crop))
    result = audit_run(run_dir, methods=("saliency", "ig"))
    # Every marked image is decided by its marker: removing it flips the decision; unmarked ones never are.
    assert result["images"] == 64 and 10 < result["images_with_cue"] < 54
    assert result["shortcut_driven"] == result["images_with_cue"]
    for method in ("saliency", "ig"):  # pixel-gradient methods: all the mass sits on the marker
        scores = result["methods"][method]
        assert scores["recall"] >= 0.9 and scores["precision"] >= 0.8 and scores["images"] == 64
        assert scores["mean_mass"]["cue"] > 0.9 and "F1" in scores["threshold_chosen_by"]
        assert scores["flag_rate"] == pytest.approx(result["images_with_cue"] / 64, abs=0.1)
        assert scores["false_alarm_rate"] <= 0.05
        assert os.path.exists(scores["gallery"])
    assert os.path.exists(os.path.join(run_dir, "eval", "audit.json"))


def test_audit_stays_quiet_on_a_model_that_never_looks_at_the_corner(tmp_path, marked_dataset):
    run_dir = _run(tmp_path, "honest", marked_dataset, _looking_at(((8, 8), (8, 8))))
    for add_marker in (False, True):
        result = audit_run(run_dir, methods=("saliency",), add_marker=add_marker)
        assert result["shortcut_driven"] == 0
        assert result["methods"]["saliency"]["flag_rate"] <= 0.05
        assert result["methods"]["saliency"]["mean_mass"]["cue"] < 0.01
        assert result["images"] == 64 and (result["images_with_cue"] == 64) == add_marker
