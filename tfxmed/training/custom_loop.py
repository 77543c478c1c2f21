"""A distributed training loop for `MultiWorkerMirroredStrategy`, where Keras 3's `model.fit` cannot run.

Keras 3's `fit` fails under `MultiWorkerMirroredStrategy` with "Attempt to convert a value (PerReplica...)
to a Tensor" (keras-team/keras#20585, tensorflow/tensorflow#72388), even on TensorFlow's own multi-worker
tutorial. `fit_distributed` does what `fit` does for `tfxmed.training.train`, with the pieces Keras keeps:

- each step is `strategy.run(model.train_step)` in a `tf.function`: the compiled model's loss, optimizer
  (gradients all-reduced by the optimizer under the strategy), metrics, and the explanation-consistency
  wrapper's own `train_step`;
- validation runs `model.test_step`; the epoch's logs are the compiled metrics read across all workers
  (`val_auc` is the AUC of every worker's predictions);
- the Keras callbacks of the run (`BestCheckpoint`, `HistoryCSV`, `TensorBoard`, `EarlyStopping`, ...)
  get the same epoch, batch and validation hooks and logs as under `fit` (so `SwapEMAWeights` works);
- a `tf.train.CheckpointManager` in RUN/backup replaces `BackupAndRestore`: every worker restores the
  chief's latest backup, and the run ends with the configured epoch count.

Every worker runs every callback and every save, because saving reads variables with collective ops that
all workers must join; non-chief workers write into a temporary folder that is removed afterwards
(`worker_run_dir`, the pattern of TensorFlow's multi-worker tutorial).
"""

from __future__ import annotations

import os
import tempfile
import time

import keras
import tensorflow as tf

from tfxmed.storage import MANIFEST_NAME, exists, is_dir, remove

__all__ = ["fit_distributed", "is_chief", "needs_custom_loop", "wait_for_manifest", "worker_run_dir"]


def needs_custom_loop(strategy: tf.distribute.Strategy) -> bool:
    """True where `model.fit` cannot train (MultiWorkerMirroredStrategy, keras-team/keras#20585)."""
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes the run: always in a single-process strategy; under a multi-worker one,
    the `chief` task, else worker 0 of a cluster without a chief (TensorFlow's convention)."""
    if not needs_custom_loop(strategy):
        return True
    resolver = strategy.cluster_resolver
    task_type, task_id = resolver.task_type, resolver.task_id
    if task_type is None or task_type == "chief":
        return True
    return task_type == "worker" and task_id == 0 and "chief" not in resolver.cluster_spec().as_dict()


def worker_run_dir(run_dir: str, chief: bool) -> str:
    """The folder this worker writes: the run directory for the chief, a new temporary folder otherwise."""
    return run_dir if chief else tempfile.mkdtemp(prefix="tfxmed-worker-")


def wait_for_manifest(directory: str, timeout: float, poll: float = 0.5) -> str:
    """Waits until the chief has converted the dataset into `directory` (its manifest exists)."""
    deadline = time.monotonic() + timeout
    while not exists(os.path.join(directory, MANIFEST_NAME)):
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"the chief did not convert the dataset into '{directory}' within {timeout:.0f} s "
                f"(no {MANIFEST_NAME}); every worker must see the same data.tfrecord_dir (a shared or gs:// "
                "folder), or convert it ahead with python -m tfxmed convert, or raise runtime.start_timeout")
        time.sleep(poll)
    return directory


def _metric_values(model: keras.Model) -> dict:
    """The compiled metrics over every replica: read eagerly, in cross-replica context, where each metric variable
    (on-read, summed) is all-reduced across the workers one by one, in the same program order on each."""
    values = {}
    for metric in model.metrics:
        result = metric.result()
        values.update(result if isinstance(result, dict) else {metric.name: result})
    return values


class _Backup:
    """Model, optimizer and finished-epoch count in a `tf.train.CheckpointManager` (BackupAndRestore's role).

    Every worker restores from the chief's folder `directory`; the chief writes there, the others into
    `write_directory` (their temporary folder).
    """

    def __init__(self, model: keras.Model, directory: str, write_directory: str):
        self.directory = directory
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="finished_epochs")
        self.checkpoint = tf.train.Checkpoint(model=model, optimizer=model.optimizer, epoch=self.epoch)
        self.manager = tf.train.CheckpointManager(self.checkpoint, write_directory, max_to_keep=1)

    def restore(self) -> int:
        latest = tf.train.latest_checkpoint(self.directory) if is_dir(self.directory) else None
        if latest:
            self.checkpoint.restore(latest).expect_partial()
        return int(self.epoch.numpy())

    def save(self, finished_epochs: int) -> None:
        self.epoch.assign(finished_epochs)
        self.manager.save(checkpoint_number=finished_epochs)


def fit_distributed(
    model: keras.Model,
    strategy: tf.distribute.Strategy,
    train_data: tf.distribute.DistributedDataset,
    val_data: tf.distribute.DistributedDataset,
    *,
    epochs: int,
    steps_per_epoch: int,
    validation_steps: int,
    callbacks: list[keras.callbacks.Callback],
    backup_dir: str,
    write_backup_dir: str,
    verbose: int = 0,
) -> keras.callbacks.History:
    """Trains the compiled `model` (built under `strategy.scope()`) like `model.fit` with these arguments,
    resuming after the last epoch backed up in `backup_dir` (see the module docstring); returns its History.

    `write_backup_dir` is where this worker writes its backups: `backup_dir` on the chief, a temporary folder
    elsewhere. The chief's backup is removed when the run ends.
    """
    history = keras.callbacks.History()
    callback_list = keras.callbacks.CallbackList([*callbacks, history], model=model, epochs=epochs,
                                                 steps=steps_per_epoch, verbose=0)
    with strategy.scope():
        model.optimizer.build(model.trainable_variables)  # its slots exist before a backup is restored
        backup = _Backup(model, backup_dir, write_backup_dir)
    first_epoch = backup.restore()

    @tf.function
    def train_step(iterator):
        strategy.run(model.train_step, args=(next(iterator),))

    @tf.function
    def test_step(iterator):
        strategy.run(model.test_step, args=(next(iterator),))

    # Keras 3 keeps non-trainable state such as BatchNorm's moving statistics per replica (aggregation
    # "none"): each worker's drift apart. tf.keras 2 averaged them on read; here they are averaged across all
    # replicas after each epoch's training steps, so validation, saves and every worker see the same model.
    local_state = [v for v in model.non_trainable_weights if v.dtype.startswith("float")]

    def average_local_state():
        context = tf.distribute.get_replica_context()
        averages = context.all_reduce(tf.distribute.ReduceOp.MEAN, [tf.identity(v.value) for v in local_state])
        for variable, average in zip(local_state, averages):
            variable.assign(average)

    synchronise = tf.function(lambda: strategy.run(average_local_state))

    def epoch_logs(prefix: str = "") -> dict:
        return {prefix + name: float(value) for name, value in _metric_values(model).items()}

    train_iterator, val_iterator = iter(train_data), iter(val_data)
    model.stop_training = False
    callback_list.on_train_begin()
    for epoch in range(first_epoch, epochs):
        started = time.monotonic()
        model.reset_metrics()
        callback_list.on_epoch_begin(epoch)
        for step in range(steps_per_epoch):
            callback_list.on_train_batch_begin(step)
            train_step(train_iterator)
            callback_list.on_train_batch_end(step)
        if local_state:
            synchronise()
        logs = epoch_logs()
        model.reset_metrics()
        callback_list.on_test_begin()  # as in fit: SwapEMAWeights validates the averaged weights
        for _ in range(validation_steps):
            test_step(val_iterator)
        callback_list.on_test_end()
        # Evaluation is the classifier's: the consistency wrapper's loss parts are training-only.
        logs.update({name: value for name, value in epoch_logs("val_").items()
                     if name not in ("val_cls_loss", "val_exp_loss")})
        backup.save(epoch + 1)  # before the callbacks that write, as BackupAndRestore (early in `train`'s list) does
        callback_list.on_epoch_end(epoch, logs)
        if verbose:
            print(f"epoch {epoch + 1}/{epochs} ({time.monotonic() - started:.1f} s): "
                  + " ".join(f"{name}={value:.4f}" for name, value in logs.items()), flush=True)
        if model.stop_training:
            break
    callback_list.on_train_end()
    if model.optimizer.use_ema:  # as fit ends: the model keeps the averaged weights
        model.optimizer.finalize_variable_values(model.trainable_weights)
    if backup_dir == write_backup_dir:  # the chief: a finished run has no backup (BackupAndRestore's rule)
        remove(backup_dir)
    return history
