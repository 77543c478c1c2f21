import csv
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import Killed, kill_after_epoch
from tfxmed.config import ConfigError, load_config
from tfxmed.models.factory import find_layer
from tfxmed.training import train
from tfxmed.training.freezing import backbone_layers, set_backbone_frozen


def test_the_backbone_is_every_weighted_layer_but_the_attention_module_and_the_head(tiny_model):
    names = [layer.name for layer in backbone_layers(tiny_model)]
    assert "conv1_1" in names and "last_conv_bn" in names
    assert not {"csam_channel", "csam_spatial", "logits"} & set(names)
    model = keras.models.clone_model(tiny_model)
    set_backbone_frozen(model, True)
    trainable = {variable.path.split("/")[0] for variable in model.trainable_variables}
    assert trainable == {"csam_channel", "csam_spatial", "logits"}
    set_backbone_frozen(model, False)
    assert len(model.trainable_variables) == len(tiny_model.trainable_variables)


class _Snapshots(keras.callbacks.Callback):
    """Every weight (BatchNorm's moving statistics included) of the classifier at the end of each epoch."""

    def __init__(self):
        super().__init__()
        self.epochs = []

    def on_epoch_end(self, epoch, logs=None):
        model = self.model
        self.epochs.append({name: [w.copy() for w in find_layer(model, name).get_weights()]
                            for name in ("conv1_1", "conv1_1_bn", "last_conv_bn", "csam_spatial", "logits")})


def _changed(before, after):
    return any(not np.array_equal(a, b) for a, b in zip(before, after))


@pytest.mark.slow
def test_frozen_layers_keep_the_loaded_weights_for_freeze_epochs_then_fine_tune(tiny_config, tmp_path):
    """A weights file made here loads; after the frozen epoch the backbone (BatchNorm statistics included) is
    exactly the file's, while CSAM and the head trained; after unfreezing the backbone trains too."""
    keras.utils.set_random_seed(3)
    from tfxmed.models import build_model

    pretrained = build_model(tiny_config.model, (32, 32, 1), 2, False)
    weights = str(tmp_path / "pretrained.weights.h5")
    pretrained.save_weights(weights)
    loaded = {name: pretrained.get_layer(name).get_weights()
              for name in ("conv1_1", "conv1_1_bn", "last_conv_bn", "csam_spatial", "logits")}
    tiny_config.model.weights = weights
    tiny_config.train.epochs, tiny_config.train.freeze_epochs = 2, 1
    tiny_config.train.tensorboard_images = 0
    snapshots = _Snapshots()
    result = train(tiny_config, tf.distribute.get_strategy(), extra_callbacks=[snapshots], verbose=0)
    frozen, unfrozen = snapshots.epochs
    for name in ("conv1_1", "conv1_1_bn", "last_conv_bn"):
        for value, expected in zip(frozen[name], loaded[name]):
            np.testing.assert_array_equal(value, expected)
        assert _changed(frozen[name], unfrozen[name]), name
    assert _changed(loaded["csam_spatial"], frozen["csam_spatial"]) and _changed(loaded["logits"], frozen["logits"])
    assert result.epochs_run == 2 and len(result.history["val_auc"]) == 2
    assert not os.path.exists(tmp_path / "run" / "frozen_phase.weights.h5")  # removed when the run finished


@pytest.mark.slow
def test_a_run_killed_after_the_frozen_phase_resumes_in_the_unfrozen_one(tiny_config, tmp_path):
    tiny_config.train.epochs, tiny_config.train.freeze_epochs = 3, 1
    tiny_config.train.tensorboard_images = 0
    with pytest.raises(Killed):
        train(tiny_config, tf.distribute.get_strategy(), extra_callbacks=[kill_after_epoch(1)], verbose=0)
    assert os.path.exists(tmp_path / "run" / "frozen_phase.weights.h5")
    snapshots = _Snapshots()
    result = train(tiny_config, tf.distribute.get_strategy(), extra_callbacks=[snapshots], verbose=0)
    with open(tmp_path / "run" / "history.csv") as stream:
        assert [int(row["epoch"]) for row in csv.DictReader(stream)] == [0, 1, 2]
    assert result.epochs_run == 1 and len(snapshots.epochs) == 1  # only epoch 2 ran after the restart
    assert not os.path.exists(tmp_path / "run" / "frozen_phase.weights.h5")


@pytest.mark.slow
def test_a_run_killed_in_the_frozen_phase_resumes_in_it_not_as_finished(tiny_config, tmp_path):
    """Killed after the first of two frozen epochs: no `backup/` yet, but the run is unfinished (its frozen-phase
    backup), so it resumes there instead of being refused as a finished run."""
    tiny_config.train.epochs, tiny_config.train.freeze_epochs = 3, 2
    tiny_config.train.tensorboard_images = 0
    with pytest.raises(Killed):
        train(tiny_config, tf.distribute.get_strategy(), extra_callbacks=[kill_after_epoch(0)], verbose=0)
    assert os.path.exists(tmp_path / "run" / "backup_frozen") and not os.path.exists(tmp_path / "run" / "backup")
    result = train(tiny_config, tf.distribute.get_strategy(), verbose=0)
    with open(tmp_path / "run" / "history.csv") as stream:
        assert [int(row["epoch"]) for row in csv.DictReader(stream)] == [0, 1, 2]
    assert result.epochs_run == 2  # epoch 1 (frozen) and epoch 2 (unfrozen) after the restart


def test_freeze_epochs_must_leave_epochs_to_fine_tune():
    with pytest.raises(ConfigError, match="train.freeze_epochs: must be < train.epochs=3"):
        load_config(None, ["train.epochs=3", "train.freeze_epochs=3"])
    with pytest.raises(ConfigError, match="multiworker"):
        load_config(None, ["train.epochs=3", "train.freeze_epochs=1", "runtime.strategy=multiworker"])
