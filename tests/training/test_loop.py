import csv
import glob
import json
import os
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import Killed, kill_after_epoch
from tfxmed import distribute
from tfxmed.config import TrainConfig
from tfxmed.training import train
from tfxmed.training.loop import StepBudget, step_budget


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
    assert "explanation/gradcam@csam" in _image_tags(os.path.join(run, "tensorboard"))
    model = keras.saving.load_model(result.best_checkpoint)
    assert model.get_layer("csam_spatial") is not None


def test_monitor_val_loss_keeps_the_lowest_loss_epoch_and_reports_its_auc(tiny_config):
    tiny_config.train.epochs, tiny_config.train.monitor = 3, "val_loss"
    result = train(tiny_config, distribute.make_strategy("cpu"), verbose=0)
    losses, aucs = result.history["val_loss"], result.history["val_auc"]
    kept = int(np.argmin(losses))
    record = json.load(open(result.best_checkpoint + ".json"))
    assert record["monitor"] == "val_loss" and record["epoch"] == kept + 1
    assert record["best"] == pytest.approx(losses[kept]) and result.best_val_auc == pytest.approx(aucs[kept])


@pytest.mark.slow
def test_killed_run_resumes_from_its_last_epoch(tiny_config):
    tiny_config.train.epochs = 4
    tiny_config.train.tensorboard_images = 0
    strategy = distribute.make_strategy("cpu")
    with pytest.raises(Killed):
        train(tiny_config, strategy, extra_callbacks=[kill_after_epoch(1)], verbose=0)
    started = time.perf_counter()
    result = train(tiny_config, strategy, verbose=0)
    elapsed = time.perf_counter() - started
    with open(os.path.join(tiny_config.runtime.run_dir, "history.csv")) as stream:
        rows = list(csv.DictReader(stream))
    epochs = [int(row["epoch"]) for row in rows]
    assert epochs == [0, 1, 2, 3]  # epochs 0-1 from the first process, 2-3 after the restart
    # what the run cost: this call plus the killed attempt's finished epochs (a tuner budgets from it)
    killed_attempt = sum(float(row["seconds"]) for row in rows[:2])
    assert killed_attempt > 0 and 0.5 * killed_attempt < result.train_seconds - elapsed <= killed_attempt
    assert result.epochs_run == 2
    assert not os.path.exists(os.path.join(tiny_config.runtime.run_dir, "backup"))  # cleared on success


@pytest.mark.slow
def test_ema_weights_are_validated_and_checkpointed(tiny_config, tmp_path):
    """With train.ema_momentum the best checkpoint holds the averaged weights validation scored."""
    import dataclasses

    from tfxmed.data import pipeline
    from tfxmed.storage import load_manifest

    config = dataclasses.replace(tiny_config, train=dataclasses.replace(tiny_config.train, ema_momentum=0.5, epochs=2))
    result = train(config, distribute.make_strategy("cpu"), verbose=0)
    manifest = load_manifest(result.data_dir)
    best_epoch = int(np.argmax(result.history["val_auc"]))
    model = keras.saving.load_model(result.best_checkpoint)
    # The validation pass fit ran: same pipeline and steps (drop_remainder, repeated).
    val = pipeline.to_keras(pipeline.build_dataset(result.data_dir, manifest, "val", config.data, False,
                                                   config.data.batch_size, drop_remainder=True).repeat())
    auc = keras.metrics.AUC(multi_label=True, num_labels=manifest["num_classes"])
    for images, labels, _ in val.take(max(manifest["splits"]["val"]["count"] // config.data.batch_size, 1)):
        auc.update_state(labels, model(images, training=False))
    assert float(auc.result()) == pytest.approx(result.history["val_auc"][best_epoch], abs=1e-4)


@pytest.mark.parametrize("train_count, expected_total", [
    (500, 600),  # 7 steps a pass: 10 passes would be 70 updates, so the floor lifts it
    (4707, 730),  # 73 steps a pass × 10 epochs, inside the bounds
    (100_000, 1500),  # 1,562 steps a pass: capped
])
def test_the_step_budget_scales_with_dataset_size(train_count, expected_total):
    budget = step_budget(train_count, 64, TrainConfig(epochs=10, min_steps=600, max_steps=1500))
    assert budget.epochs == 10 and budget.steps_per_pass == max(train_count // 64, 1)
    assert budget.total_steps == expected_total


def test_without_bounds_the_budget_is_epochs_of_passes():
    assert step_budget(300, 64, TrainConfig(epochs=3)) == StepBudget(3, 4, 4)
    assert step_budget(300, 64, TrainConfig(epochs=3, steps_per_epoch=2)).total_steps == 6


class _CountBatches(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.batches = 0

    def on_train_batch_end(self, batch, logs=None):
        self.batches += 1


@pytest.mark.slow
def test_training_runs_the_budgeted_number_of_steps(tiny_config):
    # 2 epochs of 1 step would be 2 updates; the floor of 7 makes it 2 rounds of ceil(7 / 2) = 4.
    tiny_config.train.epochs, tiny_config.train.steps_per_epoch, tiny_config.train.min_steps = 2, 1, 7
    tiny_config.train.tensorboard_images = 0
    counter = _CountBatches()
    train(tiny_config, distribute.make_strategy("cpu"), extra_callbacks=[counter], verbose=0)
    info = json.load(open(os.path.join(tiny_config.runtime.run_dir, "run_info.json")))
    assert info["step_budget"]["steps_per_epoch"] == 4 and info["step_budget"]["total_steps"] == 8
    assert counter.batches == 8


def test_a_float32_run_is_float32_whatever_policy_the_process_was_left_with(tiny_config):
    """A harness that trains a bfloat16 backbone and then a float32 one in one process: the dtype policy is
    process-global, and the second run must not inherit the first's."""
    tiny_config.train.epochs, tiny_config.train.tensorboard_images = 1, 0
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        result = train(tiny_config, distribute.make_strategy("cpu"), verbose=0)
        assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"  # the caller's policy, put back
    finally:
        keras.mixed_precision.set_global_policy("float32")
    model = keras.saving.load_model(result.best_checkpoint)
    assert {layer.compute_dtype for layer in model.layers} == {"float32"}


@pytest.mark.slow
def test_bfloat16_run_trains_evaluates_exports_and_writes_a_profile(tiny_config):
    """runtime.mixed_precision on a CPU (mixed_bfloat16; this CPU has AVX512-BF16) end to end, with
    train.profile_batches: the profiler's trace lands in the run's TensorBoard folder (issue 17 §5, §6)."""
    from tfxmed.evaluation import evaluate_run
    from tfxmed.exporting import export_run

    tiny_config.runtime.mixed_precision = True
    tiny_config.train.epochs, tiny_config.train.tensorboard_images = 1, 0
    tiny_config.train.profile_batches = "2,3"
    try:
        result = train(tiny_config, distribute.make_strategy("cpu"), verbose=0)
        assert keras.mixed_precision.global_policy().name == "float32"  # put back for the process's next run
        model = keras.saving.load_model(result.best_checkpoint)
        assert model.get_layer("last_conv").compute_dtype == "bfloat16" and model.output.dtype == "float32"
        assert np.isfinite(result.history["loss"]).all()
    finally:
        keras.mixed_precision.set_global_policy("float32")
    traces = glob.glob(os.path.join(result.run_dir, "tensorboard", "train", "plugins", "profile", "*", "*.xplane.pb"))
    assert len(traces) == 1 and os.path.getsize(traces[0]) > 0
    metrics = evaluate_run(result.run_dir)
    assert 0.0 <= metrics["classification"]["auc"] <= 1.0
    served = tf.saved_model.load(export_run(result.run_dir)).signatures["explain"](
        images=tf.random.uniform([2, 32, 32, 1]))
    assert served["explanation"].dtype == tf.float32 and np.isfinite(served["explanation"].numpy()).all()
    np.testing.assert_allclose(served["probabilities"].numpy().sum(-1), 1.0, rtol=1e-3)


def test_a_profile_range_past_the_run_is_refused(tiny_config):
    tiny_config.train.epochs, tiny_config.train.steps_per_epoch = 1, 2
    tiny_config.train.profile_batches = "5,6"
    with pytest.raises(ValueError, match=r"train.profile_batches='5,6' starts after the run's last batch \(2 = "):
        train(tiny_config, distribute.make_strategy("cpu"), verbose=0)


def test_init_from_carries_a_synthetic_run_s_backbone_into_a_medmnist_run(tiny_config, tmp_path, rng):
    """Pretrain on the synthetic benchmark (2 classes), fine-tune on a MedMNIST .npz with 3 labels: every
    backbone layer starts from the pretrained weights; the head, of another size, starts fresh."""
    from tests.helpers import learnable_npz
    from tfxmed.config import load_config
    from tfxmed.models.weights import WeightsUnavailable
    from tfxmed.runs import load_run

    tiny_config.train.epochs = 1
    pretrained = train(tiny_config, tf.distribute.get_strategy(), verbose=0)
    source = load_run(pretrained.run_dir).model
    npz = tmp_path / "labels.npz"
    learnable_npz(npz, rng, "multi_label")

    class AtStart(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.weights = {layer.name: [w.copy() for w in layer.get_weights()] for layer in self.model.layers}

    start = AtStart()
    overrides = [f"data.npz={npz}", "data.source=medmnist", "data.image_size=32", "train.epochs=1",
                 "train.min_steps=0", "train.tensorboard_images=0", f"runtime.run_dir={tmp_path / 'fine'}",
                 f"data.tfrecord_dir={tmp_path / 'npz_data'}", "model.name=small_cnn", "model.small_cnn.width=8",
                 "model.small_cnn.blocks=[1, 1, 1]", f"model.init_from={pretrained.run_dir}"]
    train(load_config(None, overrides), tf.distribute.get_strategy(), extra_callbacks=[start], verbose=0)
    record = json.load(open(tmp_path / "fine" / "init_from.json"))
    assert "last_conv" in record["copied"] and "csam_channel" in record["copied"] and record["kept"] == ["logits"]
    for name in ("conv1_1", "last_conv", "csam_spatial"):
        for ours, theirs in zip(start.weights[name], source.get_layer(name).get_weights()):
            np.testing.assert_array_equal(ours, theirs)
    assert start.weights["logits"][0].shape == (32, 3)  # a fresh head for 3 labels
    with pytest.raises(WeightsUnavailable, match="is not a finished tfxmed run"):
        train(load_config(None, [*overrides[:-1], f"runtime.run_dir={tmp_path / 'other'}",
                                 f"model.init_from={tmp_path / 'nowhere'}"]), tf.distribute.get_strategy(), verbose=0)
