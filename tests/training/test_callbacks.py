"""Training callbacks (`tfxmed.training.callbacks`): the best checkpoint survives a restart, and the default
explanation's overlays reach TensorBoard after every epoch."""

import csv
import glob
import json
import os
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfxmed.explain import GradCam
from tfxmed.training.callbacks import (
    BestCheckpoint,
    EpochSeconds,
    ExplanationImages,
    HistoryCSV,
    kept_scores,
    recorded_seconds,
)


def _model(value: float) -> keras.Model:
    """A one-weight model whose saved weight tells which epoch's model a checkpoint holds."""
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, use_bias=False)])
    model.set_weights([np.full((1, 1), value, np.float32)])
    return model


def _saved_value(path) -> float:
    return float(keras.saving.load_model(path).get_weights()[0][0, 0])


def test_best_checkpoint_keeps_the_best_across_a_restart(tmp_path):
    path = str(tmp_path / "checkpoints" / "best.keras")
    model = _model(1.0)
    first = BestCheckpoint(path)
    first.set_model(model)
    first.on_epoch_end(0, {"val_auc": 0.7})
    model.set_weights([np.full((1, 1), 2.0, np.float32)])
    first.on_epoch_end(1, {"val_auc": 0.8})
    model.set_weights([np.full((1, 1), 3.0, np.float32)])
    first.on_epoch_end(2, {"val_auc": 0.75})  # worse: not saved
    first.on_epoch_end(3, {"val_auc": float("nan")})  # not a score: not saved
    assert _saved_value(path) == 2.0
    assert json.load(open(f"{path}.json")) == {"best": 0.8, "epoch": 2, "monitor": "val_auc", "val_auc": 0.8}

    # The process dies; BackupAndRestore resumes with a model that scores worse than the saved one.
    resumed = BestCheckpoint(path)
    assert resumed.best == 0.8
    resumed.set_model(_model(4.0))
    resumed.on_epoch_end(3, {"val_auc": 0.79})
    assert _saved_value(path) == 2.0  # a fresh callback would have overwritten the better checkpoint
    resumed.on_epoch_end(4, {"val_auc": 0.9})
    assert _saved_value(path) == 4.0 and json.load(open(f"{path}.json"))["epoch"] == 5
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["best.keras", "best.keras.json"]  # no temporaries


def test_best_checkpoint_minimises_and_saves_the_given_model(tmp_path):
    path = str(tmp_path / "best.keras")
    callback = BestCheckpoint(path, monitor="val_loss", mode="min", saved=_model(5.0))
    callback.set_model(_model(6.0))  # e.g. a training wrapper around the classifier that is saved
    callback.on_epoch_end(0, {"val_loss": 0.5, "val_auc": 0.7})
    callback.on_epoch_end(1, {"val_loss": 0.9, "val_auc": 0.9})  # a higher AUC, but not the kept epoch
    assert callback.best == 0.5 and _saved_value(path) == 5.0
    # The kept epoch's AUC is recorded beside the loss, and survives a restart.
    assert callback.best_val_auc == 0.7 and BestCheckpoint(path, "val_loss", "min").best_val_auc == 0.7
    with pytest.raises(ValueError, match=r"best.keras.json: the kept checkpoint was chosen by val_loss, not val_auc"):
        BestCheckpoint(path)  # resumed with another monitor: a loss would be compared with an AUC
    with pytest.raises(ValueError, match="mode must be 'max' or 'min', got 'maximum'"):
        BestCheckpoint(path, mode="maximum")


def test_kept_scores_read_records_written_before_the_auc_was_stored_beside_the_monitor():
    assert kept_scores({"best": 0.9, "epoch": 3, "monitor": "val_auc"}) == (0.9, 0.9)
    assert kept_scores({"best": 0.3, "epoch": 3, "monitor": "val_loss"}) == (0.3, None)
    assert kept_scores({"best": 0.3, "epoch": 3, "monitor": "val_loss", "val_auc": 0.8}) == (0.3, 0.8)


class _Sleep(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        time.sleep(0.05 * (epoch + 1))


def test_epoch_seconds_reach_the_history_csv_and_add_up_over_attempts(tmp_path):
    path = str(tmp_path / "history.csv")
    assert recorded_seconds(path) == 0.0  # no history yet
    x, y = np.ones((4, 1), np.float32), np.ones((4, 1), np.float32)
    for _ in range(2):  # a run and its resumed attempt append to one history.csv
        model = _model(1.0)
        model.compile("sgd", "mse")
        history = model.fit(x, y, epochs=2, verbose=0,
                            callbacks=[EpochSeconds(), _Sleep(), HistoryCSV(path, append=True)]).history
        assert history["seconds"][0] >= 0.05 and history["seconds"][1] >= 0.1  # the slept time is inside
    with open(path) as stream:
        seconds = [float(row["seconds"]) for row in csv.DictReader(stream)]
    assert len(seconds) == 4 and recorded_seconds(path) == pytest.approx(sum(seconds)) and sum(seconds) >= 0.3


def test_a_history_written_before_a_new_column_keeps_its_columns_when_resumed(tmp_path):
    """A run killed under a version without `seconds` and resumed under this one: the new rows keep the file's
    columns (Keras would write the new set of values under the old header, each after `seconds` one column off)."""
    path = tmp_path / "history.csv"
    path.write_text("epoch,loss,val_loss\n0,0.5,0.75\n")
    model = _model(1.0)
    model.compile("sgd", "mse")
    x, y = np.ones((4, 1), np.float32), np.ones((4, 1), np.float32)
    history = model.fit(x, y, validation_data=(x, y), epochs=2, initial_epoch=1, verbose=0,
                        callbacks=[EpochSeconds(), HistoryCSV(str(path), append=True)]).history
    with open(path) as stream:
        rows = list(csv.DictReader(stream))
    assert list(rows[0]) == ["epoch", "loss", "val_loss"] and len(rows) == 2
    assert float(rows[1]["loss"]) == pytest.approx(history["loss"][0])
    assert float(rows[1]["val_loss"]) == pytest.approx(history["val_loss"][0])
    assert recorded_seconds(str(path)) == 0.0  # no seconds recorded in that file: nothing is invented


def test_explanation_images_write_the_overlays_each_epoch(tmp_path, tiny_model, rng):
    images = rng.normal(size=(3, 32, 32, 1)).astype(np.float32)
    built = []

    def make_explainer(model):
        built.append(model)
        return GradCam(model, layer="csam")

    callback = ExplanationImages(str(tmp_path), images, make_explainer, name="gradcam@csam")
    callback.set_model(tiny_model)
    callback.on_epoch_end(0)
    callback.on_epoch_end(1)
    assert built == [tiny_model]  # built once, on first use
    steps = {}
    for path in glob.glob(str(tmp_path / "explanation" / "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                assert value.tag == "explanation/gradcam@csam"
                width, height, *pngs = value.tensor.string_val
                assert (int(width), int(height)) == (32, 32)
                steps[event.step] = [tf.io.decode_png(png).shape for png in pngs]
    assert steps == {0: [(32, 32, 3)] * 3, 1: [(32, 32, 3)] * 3}
