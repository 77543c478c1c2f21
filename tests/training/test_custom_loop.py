import csv
import glob
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import REPO, TINY_CONFIG, Killed, kill_after_epoch
from tfxmed import distribute
from tfxmed.training import loop
from tfxmed.training.custom_loop import fit_distributed, is_chief, needs_custom_loop, wait_for_manifest


def _linear_problem(strategy, count=256, batch=32):
    """A linearly separable 2-class problem as (train, val) distributed datasets, repeated."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(count, 4)).astype("float32")
    y = keras.utils.to_categorical((x[:, 0] + x[:, 1] > 0).astype(int), 2)
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch, drop_remainder=True).repeat()
    return strategy.experimental_distribute_dataset(dataset), strategy.experimental_distribute_dataset(dataset)


def _linear_model(strategy):
    with strategy.scope():
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
        model.compile(keras.optimizers.Adam(0.05), "categorical_crossentropy",
                      metrics=[keras.metrics.AUC(name="auc", multi_label=True, num_labels=2)])
    return model


def test_fit_distributed_learns_logs_like_fit_and_resumes(tmp_path):
    strategy = tf.distribute.get_strategy()
    train_data, val_data = _linear_problem(strategy)
    model = _linear_model(strategy)
    backup = str(tmp_path / "backup")
    common = dict(steps_per_epoch=8, validation_steps=2, backup_dir=backup, write_backup_dir=backup)
    with pytest.raises(Killed):
        fit_distributed(model, strategy, train_data, val_data, epochs=4, callbacks=[kill_after_epoch(1)], **common)
    assert tf.train.latest_checkpoint(backup).endswith("ckpt-2")  # written before the callbacks, as BackupAndRestore

    resumed = _linear_model(strategy)  # a fresh process: new weights, restored from the backup
    csv_path = str(tmp_path / "history.csv")
    history = fit_distributed(resumed, strategy, train_data, val_data, epochs=4,
                              callbacks=[keras.callbacks.CSVLogger(csv_path)], **common)
    assert history.epoch == [2, 3]
    assert {"loss", "auc", "val_loss", "val_auc"} <= set(history.history)
    assert int(resumed.optimizer.iterations.numpy()) == 4 * 8  # the optimizer state came back too
    assert history.history["val_auc"][-1] > 0.95 and history.history["loss"][-1] < 0.5
    assert not os.path.exists(backup)  # a finished run keeps no backup
    with open(csv_path) as stream:
        assert [int(row["epoch"]) for row in csv.DictReader(stream)] == [2, 3]


def test_early_stopping_ends_the_custom_loop(tmp_path):
    strategy = tf.distribute.get_strategy()
    train_data, val_data = _linear_problem(strategy)

    class StopAt(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            self.model.stop_training = epoch == 1

    history = fit_distributed(_linear_model(strategy), strategy, train_data, val_data, epochs=5, steps_per_epoch=2,
                              validation_steps=1, callbacks=[StopAt()], backup_dir=str(tmp_path / "b"),
                              write_backup_dir=str(tmp_path / "b"))
    assert history.epoch == [0, 1]


def test_single_process_strategies_keep_fit_and_are_the_chief():
    strategy = tf.distribute.get_strategy()
    assert not needs_custom_loop(strategy) and is_chief(strategy)


def test_waiting_for_the_chief_s_dataset_is_bounded(tmp_path):
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="did not convert the dataset.*within 1 s"):
        wait_for_manifest(str(tmp_path), timeout=1, poll=0.1)
    assert time.monotonic() - started < 5
    (tmp_path / "manifest.json").write_text("{}")
    assert wait_for_manifest(str(tmp_path), timeout=1) == str(tmp_path)


def test_train_through_the_custom_loop_writes_the_run_artefacts(tiny_config, tiny_dataset, monkeypatch):
    """`train` with the custom loop forced on one process: consistency loss, the same run directory as `fit`."""
    monkeypatch.setattr(loop, "needs_custom_loop", lambda strategy: True)
    config = tiny_config
    config.data.source, config.data.tfrecord_dir = "tfrecords", tiny_dataset
    config.train.tensorboard_images = 0
    config.train.consistency.enabled = True
    result = loop.train(config, distribute.make_strategy("cpu"), verbose=0)
    run = config.runtime.run_dir
    assert result.epochs_run == 2 and result.best_val_auc is not None
    assert {"loss", "cls_loss", "exp_loss", "val_auc"} <= set(result.history) and "val_exp_loss" not in result.history
    assert os.path.exists(result.best_checkpoint) and os.path.exists(result.best_checkpoint + ".json")
    assert keras.saving.load_model(result.best_checkpoint).get_layer("csam_spatial") is not None
    with open(os.path.join(run, "history.csv")) as stream:
        assert [int(row["epoch"]) for row in csv.DictReader(stream)] == [0, 1]
    assert glob.glob(os.path.join(run, "tensorboard", "validation", "events.out.tfevents.*"))
    assert not os.path.exists(os.path.join(run, "backup"))


def test_ema_weights_are_validated_and_checkpointed_by_the_custom_loop(tiny_config, tiny_dataset, monkeypatch):
    """As under fit (tests/training/test_loop.py): the best checkpoint holds the averaged weights validation scored."""
    from tfxmed.data import pipeline
    from tfxmed.storage import load_manifest

    monkeypatch.setattr(loop, "needs_custom_loop", lambda strategy: True)
    config = tiny_config
    config.data.source, config.data.tfrecord_dir = "tfrecords", tiny_dataset
    config.train.tensorboard_images, config.train.ema_momentum = 0, 0.5
    result = loop.train(config, distribute.make_strategy("cpu"), verbose=0)
    manifest = load_manifest(result.data_dir)
    model = keras.saving.load_model(result.best_checkpoint)
    val = pipeline.to_keras(pipeline.build_dataset(result.data_dir, manifest, "val", config.data, False,
                                                   config.data.batch_size, drop_remainder=True))
    auc = keras.metrics.AUC(multi_label=True, num_labels=manifest["num_classes"])
    for images, labels, _ in val:
        auc.update_state(labels, model(images, training=False))
    assert float(auc.result()) == pytest.approx(max(result.history["val_auc"]), abs=1e-4)


# -- two worker processes on localhost -----------------------------------------------------------------------------

WORKER = textwrap.dedent(
    """
    import json, os, sys
    import numpy as np
    from tfxmed import distribute
    from tfxmed.config import load_config

    index, out, kill = int(sys.argv[1]), sys.argv[2], os.environ.get("KILL_AT")
    config = load_config(sys.argv[3], sys.argv[4:])
    strategy = distribute.make_strategy("multiworker", start_timeout=config.runtime.start_timeout)
    import keras
    from tfxmed.training import train

    class Probe(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch
        def on_train_batch_end(self, batch, logs=None):
            if kill and index == 1 and f"{self.epoch},{batch}" == kill:
                os._exit(3)  # dies mid-epoch, without cleaning up
        def on_train_end(self, logs=None):
            np.savez(out, *[w.numpy() for w in self.model.weights])

    result = train(config, strategy, extra_callbacks=[Probe()], verbose=0)
    print(json.dumps({"epochs_run": result.epochs_run, "best_val_auc": result.best_val_auc}))
    """
)
TIMEOUT = 180  # seconds per pair of workers; a pair takes ~35 s on 2 busy cores


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    try:
        for probe in sockets:
            probe.bind(("localhost", 0))
        return [probe.getsockname()[1] for probe in sockets]
    finally:
        for probe in sockets:
            probe.close()


def _start_workers(tmp_path, overrides, env=None):
    ports = _free_ports(2)
    workers = []
    for index in range(2):
        tf_config = {"cluster": {"worker": [f"localhost:{port}" for port in ports]},
                     "task": {"type": "worker", "index": index}}
        temporary = tmp_path / f"tmp{index}"
        temporary.mkdir(exist_ok=True)
        log = open(tmp_path / f"worker{index}.log", "a")
        workers.append(subprocess.Popen(
            [sys.executable, "-c", WORKER, str(index), str(tmp_path / f"weights{index}.npz"), TINY_CONFIG,
             f"runtime.run_dir={tmp_path / 'run'}", f"data.tfrecord_dir={tmp_path / 'data'}",
             "runtime.strategy=multiworker", "runtime.start_timeout=120", "train.tensorboard_images=0",
             "train.consistency.enabled=true", *overrides],
            cwd=REPO, stdout=subprocess.PIPE, stderr=log, text=True, start_new_session=True,
            env={**os.environ, **(env or {}), "TF_CONFIG": json.dumps(tf_config), "TMPDIR": str(temporary),
                 "TF_CPP_MIN_LOG_LEVEL": "2"},
        ))
        log.close()
    return workers


def _stop(workers):
    for worker in workers:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=30)
        worker.stdout.close()


def _finish(workers, tmp_path):
    """Waits for both workers (bounded); returns their JSON summaries."""
    deadline = time.monotonic() + TIMEOUT
    summaries = []
    for index, worker in enumerate(workers):
        try:
            out, _ = worker.communicate(timeout=max(deadline - time.monotonic(), 1))
        except subprocess.TimeoutExpired:
            pytest.fail(f"worker {index} ran past {TIMEOUT} s: {(tmp_path / f'worker{index}.log').read_text()[-3000:]}")
        assert worker.returncode == 0, (tmp_path / f"worker{index}.log").read_text()[-3000:]
        summaries.append(json.loads(out.strip().splitlines()[-1]))
    return summaries


def _identical_weights(tmp_path):
    first, second = np.load(tmp_path / "weights0.npz"), np.load(tmp_path / "weights1.npz")
    assert len(first.files) > 10 and first.files == second.files
    for name in first.files:
        np.testing.assert_array_equal(first[name], second[name], err_msg=name)


def _history_epochs(run):
    with open(run / "history.csv") as stream:
        return [int(row["epoch"]) for row in csv.DictReader(stream)]


@pytest.mark.slow
def test_two_workers_train_identically_and_only_the_chief_writes(tmp_path):
    # Consistency loss and EMA on: the best checkpoint (below) holds the averaged weights validation scored.
    workers = _start_workers(tmp_path, ["train.epochs=2", "train.ema_momentum=0.5"])
    try:
        summaries = _finish(workers, tmp_path)
    finally:
        _stop(workers)
    assert [s["epochs_run"] for s in summaries] == [2, 2]
    assert summaries[0]["best_val_auc"] == summaries[1]["best_val_auc"]  # metrics are read across the workers
    _identical_weights(tmp_path)
    run = tmp_path / "run"
    assert (run / "checkpoints" / "best.keras").exists() and (run / "checkpoints" / "best.keras.json").exists()
    assert _history_epochs(run) == [0, 1] and not (run / "backup").exists()
    events = glob.glob(str(run / "tensorboard" / "**" / "events.out.tfevents.*"), recursive=True)
    # Event files are named after the writing process: all of them are the chief's.
    assert events and {os.path.basename(path).split(".")[-3] for path in events} == {str(workers[0].pid)}
    assert os.listdir(tmp_path / "tmp1") == []  # the non-chief's temporary run folder is gone
    assert len(os.listdir(tmp_path / "data")) > 0  # converted once, by the chief
    # val_auc was computed over both workers' halves of the validation split, with the averaged BatchNorm
    # statistics the best checkpoint holds: scoring that checkpoint on the whole split gives it again.
    import tfxmed.models  # noqa: F401  (registers the layers to load)
    from tfxmed.config import load_config
    from tfxmed.data import pipeline
    from tfxmed.storage import load_manifest

    config, manifest = load_config(str(run / "config.yaml")), load_manifest(str(tmp_path / "data"))
    batch = next(iter(pipeline.build_dataset(str(tmp_path / "data"), manifest, "val", config.data, training=False,
                                             batch_size=64)))
    auc = keras.metrics.AUC(multi_label=True, num_labels=manifest["num_classes"])
    auc.update_state(batch["label"], keras.saving.load_model(run / "checkpoints" / "best.keras").predict(
        batch["image"], verbose=0))
    assert len(batch["label"]) == 32
    assert float(auc.result()) == pytest.approx(summaries[0]["best_val_auc"], abs=1e-6)


@pytest.mark.slow
def test_a_killed_worker_pair_resumes_from_the_backup(tmp_path):
    overrides = ["train.epochs=3"]
    workers = _start_workers(tmp_path, overrides, env={"KILL_AT": "1,3"})  # worker 1 dies in epoch 2
    try:
        workers[1].wait(timeout=TIMEOUT)
        assert workers[1].returncode == 3, (tmp_path / "worker1.log").read_text()[-3000:]
    finally:
        _stop(workers)  # the chief is stuck in (or failed) a collective with its dead peer
    backup = tmp_path / "run" / "backup"
    assert tf.train.latest_checkpoint(str(backup)).endswith("ckpt-1")
    assert _history_epochs(tmp_path / "run") == [0]

    workers = _start_workers(tmp_path, overrides)  # both restarted, on new ports
    try:
        summaries = _finish(workers, tmp_path)
    finally:
        _stop(workers)
    assert [s["epochs_run"] for s in summaries] == [2, 2]  # epochs 1 and 2 after the restart
    assert _history_epochs(tmp_path / "run") == [0, 1, 2]  # the configured 3 epochs in all
    assert not backup.exists()
    _identical_weights(tmp_path)
