"""Training callbacks: a resume-safe best checkpoint, epoch wall times, and Grad-CAM overlays in TensorBoard."""

from __future__ import annotations

import csv
import json
import os
import time
from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from tfxmed.explain.overlay import display_maps, overlay
from tfxmed.metrics.maps import minmax_per_map
from tfxmed.storage import atomic_path, exists, make_dirs, open_file, write_json_atomic

__all__ = ["BestCheckpoint", "EpochSeconds", "ExplanationImages", "HistoryCSV", "kept_scores", "recorded_seconds"]


class BestCheckpoint(keras.callbacks.Callback):
    """Saves the model whenever `monitor` improves; the best value survives a restart.

    Unlike `ModelCheckpoint(save_best_only=True)`, the best score is stored next to the checkpoint,
    so a run resumed by `BackupAndRestore` does not overwrite a better checkpoint with a worse one.
    `saved` is the model written (default: the trained model; a training wrapper passes its classifier).
    """

    def __init__(self, path: str, monitor: str = "val_auc", mode: str = "max", saved: keras.Model | None = None):
        super().__init__()
        self.saved = saved
        if mode not in ("max", "min"):
            raise ValueError(f"BestCheckpoint mode must be 'max' or 'min', got '{mode}'")
        self.path, self.monitor, self.mode = path, monitor, mode
        self.state_path = f"{path}.json"
        self.best = None
        self.best_val_auc = None  # the kept epoch's validation AUC, whatever `monitor` is
        if exists(self.state_path):
            with open_file(self.state_path) as stream:
                record = json.load(stream)
            if _recorded_monitor(record) != monitor:  # a loss is not comparable with an AUC
                raise ValueError(f"{self.state_path}: the kept checkpoint was chosen by {_recorded_monitor(record)}, "
                                 f"not {monitor}; resume with that monitor or train into another run directory")
            self.best, self.best_val_auc = kept_scores(record)

    def _improved(self, value: float) -> bool:
        if self.best is None:
            return True
        return value > self.best if self.mode == "max" else value < self.best

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None or not np.isfinite(value) or not self._improved(float(value)):
            return
        self.best = float(value)
        auc = (logs or {}).get("val_auc")
        self.best_val_auc = None if auc is None else float(auc)
        make_dirs(os.path.dirname(self.path) or ".")
        with atomic_path(self.path, ".keras") as temporary:
            (self.saved or self.model).save(temporary)
        write_json_atomic({"best": self.best, "epoch": epoch + 1, "monitor": self.monitor,
                           "val_auc": self.best_val_auc}, self.state_path)


def _recorded_monitor(record: dict) -> str:
    """What a `best.keras.json` record was monitored on; records older than the `monitor` key were all `val_auc`."""
    return record.get("monitor", "val_auc")


def kept_scores(record: dict) -> tuple[float | None, float | None]:
    """(the monitored value, the validation AUC) of a kept checkpoint from its `best.keras.json` record. Records
    written before the AUC was stored beside the monitored value were all monitored on `val_auc`."""
    auc = record.get("val_auc", record["best"] if _recorded_monitor(record) == "val_auc" else None)
    return record["best"], auc


class EpochSeconds(keras.callbacks.Callback):
    """Adds `seconds`, each epoch's wall time (its training steps, validation and what runs before validation),
    to the epoch's logs. Placed before `HistoryCSV`, the run's history.csv keeps the time of every finished
    epoch over every attempt of a resumed run (`recorded_seconds`); TensorBoard plots it as `epoch_seconds`."""

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["seconds"] = time.perf_counter() - self._started


def recorded_seconds(history_path: str) -> float:
    """The summed `seconds` column of a run's history.csv: the finished epochs' wall time (0 with no file)."""
    if not exists(history_path):
        return 0.0
    with open_file(history_path) as stream:
        values = [row.get("seconds") for row in csv.DictReader(stream)]
    return float(sum(_number(value) for value in values))


def _number(text: str | None) -> float:
    """A history cell as seconds: 0 for a missing one (a file written before `seconds`, or Keras' "NA")."""
    try:
        return max(float(text), 0.0) if text is not None else 0.0
    except ValueError:
        return 0.0


class HistoryCSV(keras.callbacks.CSVLogger):
    """`keras.callbacks.CSVLogger` that keeps an existing file's columns and closes a `tf.io.gfile.GFile`.

    - Appending to a history.csv (a resumed run), Keras builds the columns from the new epoch's logs and writes
      them under the old header: a run resumed by a version that logs one more key (`seconds`) would shift
      every value after it into the wrong column. The file's own header is kept instead (new keys are left
      out of that run's file).
    - A `gs://` or `ram://` run dir's GFile has no `closed`, which Keras' own `on_train_end` reads.
    """

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if self.append and exists(self.filename):
            with open_file(self.filename) as stream:
                header = next(csv.reader(stream, delimiter=self.sep), None)
            if header and header[0] == "epoch":
                self.keys = header[1:]

    def on_train_end(self, logs=None):
        if self.csv_file is not None and not getattr(self.csv_file, "closed", False):
            self.csv_file.close()
        self.csv_file, self.writer = None, None


class ExplanationImages(keras.callbacks.Callback):
    """Writes overlays of the run's default explanation on fixed validation images to TensorBoard after
    every epoch (tag `explanation/<method>`). Runs on the host between epochs (never inside the train step).

    `make_explainer(model)` builds the explainer once, on first use (the model is attached after
    `__init__`); `classifier` is explained instead of the trained model (e.g. a training wrapper).
    """

    def __init__(self, log_dir: str, images: np.ndarray, make_explainer: Callable, name: str = "gradcam",
                 display: np.ndarray | None = None, classifier: keras.Model | None = None):
        super().__init__()
        self.classifier, self.make_explainer, self.name = classifier, make_explainer, name
        self.images = images
        self.display = images if display is None else display
        self.writer = tf.summary.create_file_writer(os.path.join(log_dir, "explanation"))
        self._explainer = None

    def on_epoch_end(self, epoch, logs=None):
        if self._explainer is None:
            self._explainer = self.make_explainer(self.classifier or self.model)
        maps = self._explainer(self.images)
        display = minmax_per_map(self.display, floor=1e-6)
        with self.writer.as_default():
            tf.summary.image(f"explanation/{self.name}", overlay(display, display_maps(maps)), step=epoch,
                             max_outputs=len(maps))
        self.writer.flush()
