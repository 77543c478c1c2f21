"""The training library behind `python -m tfxmed.train`: data → model under a strategy → fit."""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from tfrecords_tools.prepare import dataset_dir, prepare_data
from tfxmed.config import VOLUME_MODELS, Experiment, TrainConfig
from tfxmed.config_choices import MONITOR_MODES
from tfxmed.config_rules import profile_range
from tfxmed.data import pipeline
from tfxmed.data.augment_albumentations import check_backend
from tfxmed.data.selection import lesions_first
from tfxmed.default_explanation import choose, explainer_for
from tfxmed.models import build_model
from tfxmed.models.weights import WeightsUnavailable, init_from
from tfxmed.runs import RunPaths, claim_run_dir, load_run, write_run_info
from tfxmed.storage import is_remote, load_manifest, remove, write_json_atomic
from tfxmed.training.batchnorm import BatchNormStatistics
from tfxmed.training.callbacks import BestCheckpoint, EpochSeconds, ExplanationImages, HistoryCSV, recorded_seconds
from tfxmed.training.consistency import ExplanationConsistencyModel
from tfxmed.training.custom_loop import fit_distributed, is_chief, needs_custom_loop, wait_for_manifest, worker_run_dir
from tfxmed.training.freezing import FrozenPhase, set_backbone_frozen
from tfxmed.training.losses import ElementwiseBinaryCrossentropy, GroupedCrossentropy
from tfxmed.training.xla import check_model_compiles, jit_compile_enabled, keras_jit_compile

__all__ = ["TrainResult", "StepBudget", "step_budget", "train", "compile_model"]


@dataclasses.dataclass
class TrainResult:
    run_dir: str
    data_dir: str
    history: dict
    best_checkpoint: str
    best_val_auc: float | None  # the validation AUC of the kept checkpoint (chosen by `train.monitor`)
    epochs_run: int
    # Wall time of this call (data preparation included) plus the finished epochs of earlier, killed attempts
    # (their history.csv rows): what the run cost, resumed or not; for a resumed run a lower bound (a killed
    # attempt's start-up and unfinished epoch are not recorded). Budgets (`tune`, `auto`) are estimated from it.
    train_seconds: float = 0.0


@dataclasses.dataclass(frozen=True)
class StepBudget:
    """How long training runs: `epochs` validation rounds of `steps_per_epoch` optimisation steps."""

    epochs: int
    steps_per_epoch: int
    steps_per_pass: int  # steps in one pass over the training split

    @property
    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch


def step_budget(train_count: int, batch_size: int, train: TrainConfig) -> StepBudget:
    """The optimisation-step budget for `train_count` training examples (`train.min_steps`/`max_steps`).

    Without bounds: `train.epochs` passes (or `train.epochs` × `train.steps_per_epoch` if that is set).
    With them, the total is clipped to [min_steps, max_steps] and spread over `train.epochs` rounds, so a
    dataset of 500 images trains as many steps as the floor asks and a huge one stops at the cap, with
    validation, checkpointing and early stopping still `train.epochs` times.
    """
    per_pass = max(train_count // batch_size, 1)
    per_epoch = train.steps_per_epoch or per_pass
    total = train.epochs * per_epoch
    if train.min_steps:
        total = max(total, train.min_steps)
    if train.max_steps:
        total = min(total, train.max_steps)
    return StepBudget(train.epochs, max(math.ceil(total / train.epochs), 1), per_pass)


def model_input_shape(config: Experiment, manifest: dict) -> tuple[int, ...]:
    """The classifier's input: (size, size, channels), or (depth, size, size, channels) for volumes; refuses a 2-D
    model for volumes and a volume model for images, naming the ones that fit."""
    channels = pipeline.input_channels(config.data, manifest)
    volumes = manifest.get("kind") == "volume"
    if volumes != (config.model.name in VOLUME_MODELS):
        wanted = "volume models: " + ", ".join(VOLUME_MODELS) if volumes else "a 2-D model"
        raise ValueError(f"model.name={config.model.name}: the data in this run are "
                         f"{'volumes' if volumes else '2-D images'}, which need {wanted}")
    if volumes:
        from tfxmed.data.volume_pipeline import volume_shape

        return (*volume_shape(config.data), channels)
    return (config.data.image_size, config.data.image_size, channels)


def compile_model(model: keras.Model, config: Experiment, manifest: dict, steps_per_epoch: int,
                  jit_compile: bool | str = "auto", epochs: int | None = None, learning_rate: float | None = None,
                  warmup_epochs: int | None = None) -> None:
    """Adam (β1, β2) with cosine-decayed LR, label-smoothed cross-entropy, macro AUC; the train and evaluation
    steps XLA-compiled per `jit_compile` (`tfxmed.training.xla.keras_jit_compile`).

    `epochs`, `learning_rate`, `warmup_epochs` default to `config.train`'s (a phase of `train.freeze_epochs`
    passes its own)."""
    train = config.train
    epochs = train.epochs if epochs is None else epochs
    learning_rate = train.learning_rate if learning_rate is None else learning_rate
    total_steps = max(epochs * steps_per_epoch, 1)
    warmup = min(train.warmup_epochs if warmup_epochs is None else warmup_epochs, epochs) * steps_per_epoch
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup else learning_rate,
        decay_steps=max(total_steps - warmup, 1),
        warmup_target=learning_rate if warmup else None,
        warmup_steps=warmup,
    )
    optimizer = keras.optimizers.Adam(schedule, beta_1=train.beta_1, beta_2=train.beta_2,
                                      use_ema=train.ema_momentum > 0, ema_momentum=train.ema_momentum or 0.99)
    num_classes = manifest["num_classes"]
    if manifest.get("label_groups"):  # a softmax per group (CheXpert U-MultiClass)
        loss = GroupedCrossentropy(manifest["label_groups"], label_smoothing=train.label_smoothing)
        accuracy = keras.metrics.BinaryAccuracy(name="accuracy")
    elif manifest["multi_label"]:
        loss = ElementwiseBinaryCrossentropy(label_smoothing=train.label_smoothing)  # per-label weights
        accuracy = keras.metrics.BinaryAccuracy(name="accuracy")
    else:
        loss = keras.losses.CategoricalCrossentropy(label_smoothing=train.label_smoothing)
        accuracy = keras.metrics.CategoricalAccuracy(name="accuracy")
    # One-vs-rest macro AUC; for a 2-class softmax both columns give the positive-class AUC.
    auc = keras.metrics.AUC(name="auc", multi_label=True, num_labels=num_classes)
    model.compile(optimizer=optimizer, loss=loss, metrics=[accuracy, auc], weighted_metrics=[], jit_compile=jit_compile)
    check_model_compiles(model, jit_compile)


def _monitor_images(data_dir: str, manifest: dict, config: Experiment) -> tuple[np.ndarray, np.ndarray]:
    """A few validation images (positives first) for the TensorBoard Grad-CAM panel."""
    count = config.train.tensorboard_images
    dataset = pipeline.build_dataset(data_dir, manifest, "val", config.data, training=False, batch_size=64)
    batch = {key: value.numpy() for key, value in next(iter(dataset)).items()}
    chosen = lesions_first(batch, count, largest_first=True)
    return batch["image"][chosen], batch["mask"][chosen]


def _with_consistency(classifier: keras.Model, config: Experiment) -> keras.Model:
    """The model `fit` trains: the classifier, or its explanation-consistency wrapper when enabled."""
    options = config.train.consistency
    if not options.enabled:
        return classifier
    return ExplanationConsistencyModel(
        classifier, layer=options.layer or config.explain.layer or None, alpha=options.alpha,
        distance=options.distance, ig_steps=options.ig_steps, ig_fraction=options.ig_fraction,
        ig_gradient=options.ig_gradient, every=options.every, ig_baseline=options.ig_baseline,
        ig_blur_sigma=options.ig_blur_sigma,
    )


def _init_from(classifier: keras.Model, run_dir: str) -> dict:
    """`model.init_from`: the weights of another finished run, copied by layer name (tfxmed.models.weights)."""
    try:
        source = load_run(run_dir).model
    except FileNotFoundError as error:
        raise WeightsUnavailable(f"model.init_from: '{run_dir}' is not a finished tfxmed run ({error})") from error
    return init_from(classifier, source, run_dir)


def _profile_batches(config: Experiment, total_steps: int) -> str | int:
    """TensorBoard's `profile_batch` for `train.profile_batches` (0: off); refuses a range past the run's end."""
    span = profile_range(config.train.profile_batches)  # parsed as the configuration checked it at load
    if span is None:
        return 0
    start, stop = span
    if start > total_steps:
        per_epoch = total_steps // config.train.epochs
        raise ValueError(f"train.profile_batches={config.train.profile_batches!r} starts after the run's last batch "
                         f"({total_steps} = {config.train.epochs} epochs x {per_epoch} steps); profile earlier "
                         "batches or train longer")
    return start if start == stop else f"{start},{stop}"


def train(
    config: Experiment,
    strategy: tf.distribute.Strategy,
    extra_callbacks: Sequence[keras.callbacks.Callback] = (),
    verbose: int = 2,
    overwrite: bool = False,
) -> TrainResult:
    """Trains `config` under `strategy`; resumes from `run_dir/backup` if a previous run was killed.

    The run directory is claimed first (`tfxmed.runs.claim_run_dir`): a finished run or a run of
    another config is refused unless `overwrite`, and a folder that is not a tfxmed run always is.
    """
    keras.utils.set_random_seed(config.runtime.seed)
    # Keras's dtype policy is process-global: it is set from this config whichever way it points, and put back
    # afterwards, so a bfloat16 run does not leak into the next run of a harness, search or cross-validation
    previous_policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(precision_policy(config.runtime.mixed_precision))
    try:
        return _claim_and_train(config, strategy, extra_callbacks, verbose, overwrite)
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)


def precision_policy(mixed: bool) -> str:
    """The Keras dtype policy of `runtime.mixed_precision`: mixed_float16 on a GPU, mixed_bfloat16 elsewhere
    (CPU with AVX512-BF16/AMX, TPU), float32 when off."""
    if not mixed:
        return "float32"
    return "mixed_float16" if tf.config.list_physical_devices("GPU") else "mixed_bfloat16"


def _claim_and_train(config: Experiment, strategy: tf.distribute.Strategy,
                     extra_callbacks: Sequence[keras.callbacks.Callback], verbose: int, overwrite: bool) -> TrainResult:
    if isinstance(strategy, tf.distribute.TPUStrategy):
        check_backend(config.data.augment_backend, "tpu")
    # Under multi-worker training only the chief claims and writes the run directory and converts the
    # dataset; the other workers wait for its manifest and write into a temporary folder, removed at the end.
    chief = is_chief(strategy)
    started, earlier = time.perf_counter(), 0.0
    if chief and claim_run_dir(config.runtime.run_dir, config, overwrite) == "resume":
        earlier = recorded_seconds(RunPaths(config.runtime.run_dir).history)
    run_dir = worker_run_dir(config.runtime.run_dir, chief)
    try:
        result = _train(config, strategy, run_dir, chief, extra_callbacks, verbose)
        return dataclasses.replace(result, train_seconds=earlier + time.perf_counter() - started)
    finally:
        if not chief:
            remove(run_dir)


def _train(config: Experiment, strategy: tf.distribute.Strategy, run_dir: str, chief: bool,
           extra_callbacks: Sequence[keras.callbacks.Callback], verbose: int) -> TrainResult:
    if chief:
        data_dir = prepare_data(config, progress=verbose > 0)
    else:
        data_dir = wait_for_manifest(dataset_dir(config), config.runtime.start_timeout)
    manifest = load_manifest(data_dir)
    train_count, val_count = manifest["splits"]["train"]["count"], manifest["splits"]["val"]["count"]
    if config.data.cv_folds > 0:  # k-fold: both come from the pooled train+val records (expected sizes)
        pooled, folds = train_count + val_count, config.data.cv_folds
        train_count, val_count = pooled * (folds - 1) // folds, pooled // folds
    batch = config.data.batch_size
    if batch % strategy.num_replicas_in_sync:
        raise ValueError(
            f"data.batch_size={batch} must be divisible by the {strategy.num_replicas_in_sync} replicas"
        )
    budget = step_budget(train_count, batch, config.train)
    steps_per_epoch = budget.steps_per_epoch
    write_run_info(
        config, run_dir,
        {"data_dir": data_dir if is_remote(data_dir) else os.path.abspath(data_dir),
         "replicas": strategy.num_replicas_in_sync,
         "strategy": config.runtime.strategy,
         "step_budget": {**dataclasses.asdict(budget), "total_steps": budget.total_steps}},
    )
    validation_steps = max(val_count // batch, 1)

    seed = config.runtime.seed
    train_data = pipeline.distributed_dataset(strategy, data_dir, manifest, "train", config.data, True, seed)
    val_data = pipeline.distributed_dataset(strategy, data_dir, manifest, "val", config.data, False, seed)
    input_shape = model_input_shape(config, manifest)
    profile = _profile_batches(config, config.train.epochs * steps_per_epoch)  # refused before the model is built
    with strategy.scope():
        classifier = build_model(config.model, input_shape, manifest["num_classes"], manifest["multi_label"],
                                 manifest.get("label_groups"))
        if config.model.init_from:  # a resumed run's backup restores its own weights over these
            initialised = _init_from(classifier, config.model.init_from)
            if chief:
                write_json_atomic(initialised, os.path.join(run_dir, "init_from.json"))
        model = _with_consistency(classifier, config)
        keras_jit = keras_jit_compile(config.runtime.jit_compile, strategy)
        freeze = config.train.freeze_epochs
        if freeze:
            set_backbone_frozen(classifier, True)
        compile_model(model, config, manifest, steps_per_epoch, keras_jit, epochs=freeze or None)

    paths = RunPaths(run_dir)
    best_path = paths.best_checkpoint
    # With EMA, the averaged weights are swapped in for validation and the best checkpoint each epoch.
    ema = [keras.callbacks.SwapEMAWeights(swap_on_epoch=True)] if config.train.ema_momentum > 0 else []
    # After the EMA swap: the weights validated get their own batch-norm statistics.
    statistics = [BatchNormStatistics(classifier, pipeline.build_dataset(
        data_dir, manifest, "train", config.data, training=False, batch_size=batch), config.train.batchnorm_batches)
    ] if config.train.batchnorm_batches else []
    monitor = dict(monitor=config.train.monitor, mode=MONITOR_MODES[config.train.monitor])
    best = BestCheckpoint(best_path, **monitor, saved=classifier)
    custom_loop = needs_custom_loop(strategy)
    callbacks: list[keras.callbacks.Callback] = [
        EpochSeconds(),  # first: the callbacks after it log each epoch's `seconds`
        *([] if custom_loop else [keras.callbacks.BackupAndRestore(paths.backup)]),
        *ema,
        *statistics,
        best,
        keras.callbacks.EarlyStopping(**monitor, patience=config.train.early_stopping_patience),
        HistoryCSV(paths.history, append=True),
        keras.callbacks.TensorBoard(paths.tensorboard, update_freq="epoch", profile_batch=profile),
    ]
    if config.train.tensorboard_images > 0 and manifest.get("kind") != "volume":  # 2-D overlays only
        images, _ = _monitor_images(data_dir, manifest, config)
        # explain.method: auto is chosen on the validation masks at evaluation; until then, its fallback.
        choice = choose(classifier, config, None)
        jit = jit_compile_enabled(config.runtime.jit_compile, strategy)
        callbacks.append(ExplanationImages(paths.tensorboard, images,
                                           lambda m: explainer_for(m, choice, len(images), jit_compile=jit),
                                           choice.name, classifier=classifier))
    callbacks.extend(extra_callbacks)
    if custom_loop:  # model.fit cannot run under MultiWorkerMirroredStrategy (keras-team/keras#20585)
        run = RunPaths(config.runtime.run_dir)  # the chief's: every worker resumes from its backup
        history = fit_distributed(
            model, strategy, train_data, val_data, epochs=config.train.epochs, steps_per_epoch=steps_per_epoch,
            validation_steps=validation_steps, callbacks=callbacks, backup_dir=run.backup,
            write_backup_dir=paths.backup, verbose=verbose)
        return TrainResult(run.root, data_dir, history.history, run.best_checkpoint, best.best_val_auc,
                           len(history.epoch))
    fit = dict(steps_per_epoch=steps_per_epoch, validation_data=val_data, validation_steps=validation_steps,
               verbose=verbose)
    if not freeze:
        history = model.fit(train_data, epochs=config.train.epochs, callbacks=callbacks, **fit).history
    else:
        history = _fit_in_phases(model, classifier, strategy, config, manifest, train_data, fit, callbacks, run_dir,
                                 keras_jit)
    return TrainResult(run_dir, data_dir, history, best_path, best.best_val_auc,
                       len(next(iter(history.values()), [])))


def _fit_in_phases(model, classifier, strategy, config, manifest, train_data, fit: dict, callbacks: list, run_dir: str,
                   jit) -> dict:
    """`train.freeze_epochs`: the frozen phase (skipped when a resumed run finished it), then the unfrozen one."""
    freeze, phase = config.train.freeze_epochs, FrozenPhase(run_dir)
    history: dict[str, list] = {}
    backup = [callback for callback in callbacks if isinstance(callback, keras.callbacks.BackupAndRestore)]
    others = [callback for callback in callbacks if callback not in backup]
    if phase.done:
        phase.restore(classifier)
    else:
        frozen_backup = keras.callbacks.BackupAndRestore(phase.backup)
        first = model.fit(train_data, epochs=freeze, callbacks=[frozen_backup, *others], **fit)
        history = first.history
        phase.finish(classifier)
    with strategy.scope():
        set_backbone_frozen(classifier, False)
        compile_model(model, config, manifest, fit["steps_per_epoch"], jit, epochs=config.train.epochs - freeze,
                      learning_rate=config.train.learning_rate * config.train.unfreeze_lr_factor, warmup_epochs=0)
    # A resumed phase 1 left BackupAndRestore's epoch on the model, and Keras' fit prefers it to initial_epoch.
    model._initial_epoch = None
    second = model.fit(train_data, epochs=config.train.epochs, initial_epoch=freeze, callbacks=callbacks, **fit)
    phase.clean()
    return {key: history.get(key, []) + values for key, values in second.history.items()}
