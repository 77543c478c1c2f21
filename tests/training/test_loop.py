import csv
import glob
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfxmed import distribute
from tfxmed.training import train


class _Killed(RuntimeError):
    pass


class _KillAfterEpoch(keras.callbacks.Callback):
    """Simulates the process dying right after an epoch's backup was written."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise _Killed(f"killed after epoch {epoch}")


def _image_tags(log_dir):
    tags = set()
    for path in glob.glob(os.path.join(log_dir, "**", "events.out.tfevents.*"), recursive=True):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                tags.add(value.tag)
    return tags


@pytest.mark.slow
def test_training_writes_run_artefacts(tiny_config):
    result = train(tiny_config, distribute.make_strategy("cpu"), verbose=0)
    run = tiny_config.runtime.run_dir
    assert result.epochs_run == 2
    assert {"loss", "val_loss", "auc", "val_auc"} <= set(result.history)
    assert os.path.exists(result.best_checkpoint) and result.best_val_auc is not None
    info = json.load(open(os.path.join(run, "run_info.json")))
    assert info["seed"] == 42 and info["versions"]["keras"] == keras.__version__
    assert os.path.exists(os.path.join(run, "config.yaml"))
    assert "gradcam/validation" in _image_tags(os.path.join(run, "tensorboard"))
    model = keras.saving.load_model(result.best_checkpoint)
    assert model.get_layer("csam_spatial") is not None


@pytest.mark.slow
def test_killed_run_resumes_from_its_last_epoch(tiny_config):
    tiny_config.train.epochs = 4
    tiny_config.train.tensorboard_images = 0
    strategy = distribute.make_strategy("cpu")
    with pytest.raises(_Killed):
        train(tiny_config, strategy, extra_callbacks=[_KillAfterEpoch(1)], verbose=0)
    result = train(tiny_config, strategy, verbose=0)
    with open(os.path.join(tiny_config.runtime.run_dir, "history.csv")) as stream:
        epochs = [int(row["epoch"]) for row in csv.DictReader(stream)]
    assert epochs == [0, 1, 2, 3]  # epochs 0-1 from the first process, 2-3 after the restart
    assert result.epochs_run == 2
    assert not os.path.exists(os.path.join(tiny_config.runtime.run_dir, "backup"))  # cleared on success
