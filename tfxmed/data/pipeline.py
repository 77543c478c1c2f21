"""The tf.data reader: shards → interleave → parse/decode → resize → augment → normalise → batch.

`build_dataset` makes one (per-replica) pipeline; `distributed_dataset` builds it through
`strategy.distribute_datasets_from_function`, so each input pipeline reads its own shards and batches
its replica's share of the global batch.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfxmed.config import DataConfig
from tfxmed.data import augment as augment_lib
from tfxmed.data import features
from tfxmed.data.augment_albumentations import albumentations_augment, build_transform, check_backend
from tfxmed.data.splits import class_weights, fold_filter, normalize, record_fold, split_files

__all__ = [
    "DECODE_BATCH",
    "build_dataset",
    "distributed_dataset",
    "to_keras",
    "class_weights",
    "normalize",
    "preprocess_for_eval",
    "record_fold",
    "split_files",
    "input_channels",
]


DECODE_BATCH = 64  # records parsed and decoded together (see build_dataset)


def preprocess_for_eval(image: tf.Tensor, image_size: int) -> tf.Tensor:
    """uint8 or [0, 1] float image(s) → float [0, 1] at `image_size` (shared by eval and serving).

    Same size: unchanged; shrinking: area averaging (antialiased, and ~1.3× faster here than
    antialiased bilinear); enlarging (e.g. MedMNIST's 28 px): bilinear.
    """
    if image.dtype == tf.uint8:
        image = tf.cast(image, tf.float32) / 255.0
    size = tf.shape(image)[-3:-1]
    target = tf.constant([image_size, image_size], tf.int32)
    resized = tf.case(
        [(tf.reduce_all(tf.equal(size, target)), lambda: tf.identity(image)),
         (tf.reduce_all(size >= target), lambda: tf.image.resize(image, target, method="area"))],
        default=lambda: tf.image.resize(image, target, method="bilinear", antialias=True),
    )
    static = image.shape.as_list()
    resized.set_shape([*static[:-3], image_size, image_size, static[-1]])
    return resized


def input_channels(config: DataConfig, manifest: dict) -> int:
    """The image channels the pipeline yields: the dataset's own unless `data.channels` insists."""
    stored = int(manifest.get("channels", 1))
    if config.channels and config.channels != stored:
        raise ValueError(f"data.channels={config.channels} but the dataset's images have {stored} channel(s); "
                         "set data.channels: 0 to follow the dataset")
    return stored


def _class_balanced(records: tf.data.Dataset, manifest: dict, seed: int) -> tf.data.Dataset:
    """Serialized records drawn with equal probability per class (one repeated stream per class)."""
    if manifest["multi_label"]:
        raise ValueError("data.oversample balances single-label classes; for multi-label data use "
                         "data.class_weights or per-label weights")
    counts = manifest["splits"]["train"]["class_counts"]
    present = [i for i, name in enumerate(manifest["class_names"]) if counts[name] > 0]
    spec = features.feature_spec(manifest["num_classes"], [features.LABEL_INDEX])

    def of_class(index: int):
        return lambda raw: tf.equal(tf.io.parse_single_example(raw, spec)[features.LABEL_INDEX], index)

    streams = [records.filter(of_class(i)).repeat() for i in present]
    return tf.data.Dataset.sample_from_datasets(streams, weights=[1.0 / len(present)] * len(present), seed=seed)


def build_dataset(
    data_dir: str,
    manifest: dict,
    split: str,
    config: DataConfig,
    training: bool,
    batch_size: int,
    input_context: tf.distribute.InputContext | None = None,
    seed: int = 42,
    drop_remainder: bool | None = None,
    masks: bool = True,
) -> tf.data.Dataset:
    """Batches of dicts `image` (normalised float), `mask` (float [0, 1]), `label`, `label_weight`, ...

    Training pipelines shuffle, augment and drop the remainder (static batch shapes for TPU); eval
    pipelines keep every example in order unless `drop_remainder` is given. `masks=False` leaves out
    `mask` and `has_mask` (training never reads them: no work resizing and augmenting them). Volume
    folders (`manifest["kind"] == "volume"`) are read by `tfxmed.data.volume_pipeline`.
    """
    if manifest.get("kind") == "volume":
        from tfxmed.data.volume_pipeline import build_volume_dataset

        return build_volume_dataset(data_dir, manifest, split, config, training, batch_size, input_context, seed,
                                    drop_remainder, masks)
    files = split_files(data_dir, manifest, split, config)
    if not files:
        raise ValueError(f"{data_dir}: split '{split}' has no shards (manifest count "
                         f"{manifest['splits'].get(split, {}).get('count', 0)})")
    if config.cv_folds > 0 and (manifest.get("smote") or manifest.get("gan")):
        raise ValueError(f"{data_dir}: SMOTE and GAN samples are made from every training patient, each fold's "
                         "validation patients included, so cross-validation on them would be optimistic; convert "
                         "without them for cross-validation")
    dataset = tf.data.Dataset.from_tensor_slices(files)
    shard_records = False
    if input_context is not None and input_context.num_input_pipelines > 1:
        if len(files) >= input_context.num_input_pipelines:
            dataset = dataset.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
        else:
            shard_records = True
    if training:
        dataset = dataset.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.interleave(
        tf.data.TFRecordDataset,
        cycle_length=min(len(files), 8),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=not training or shard_records,  # sharding records needs the same order in every pipeline
    )
    if shard_records:
        dataset = dataset.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
    num_classes, channels, size = manifest["num_classes"], input_channels(config, manifest), config.image_size
    if training and config.oversample:
        if config.cache:
            raise ValueError("data.cache keeps one pass of records in memory; data.oversample draws an endless "
                             "class-balanced stream: use one of them")
        dataset = _class_balanced(dataset, manifest, seed)
    if training and not config.cache:  # shuffling serialized records is cheaper than decoded images
        dataset = dataset.shuffle(config.shuffle_buffer, seed=seed, reshuffle_each_iteration=True)

    weights = tf.constant(class_weights(manifest) if config.class_weights else np.ones(num_classes), tf.float32)

    transform = None
    if training and config.augment and config.augment_backend != "tf":
        check_backend(config.augment_backend, "")
        transform = build_transform(config.rotation_degrees, config.flip_left_right, config.flip_up_down,
                                    config.brightness, config.contrast, config.crop_fraction, size, seed)

    def decode(example: dict) -> dict:
        """The deterministic part on a batch: resize and weigh (what `data.cache` keeps, per example)."""
        if manifest["multi_label"]:  # per-label weights [K] (0 = ignore this label, e.g. CheXpert U-Ignore)
            sample_weight = example["label_weight"]
        else:
            sample_weight = tf.reduce_max(example["label"] * weights, axis=-1)
        decoded = {} if training else {  # the shortcut audit's annotation; training never looks at it
            "confounder": tf.image.resize(tf.cast(example["confounder"], tf.float32) / 255.0, [size, size]),
            "has_confounder": example["has_confounder"],
        }
        if masks:
            decoded.update(mask=tf.image.resize(tf.cast(example["mask"], tf.float32) / 255.0, [size, size]),
                           has_mask=example["has_mask"])
        return {
            **decoded,
            "image": preprocess_for_eval(example["image"], size),
            "label": example["label"],
            "label_weight": example["label_weight"],
            "sample_weight": tf.cast(sample_weight, tf.float32),
        }

    def augment_and_normalize(example: dict) -> dict:
        """Per example (albumentations) or per batch (TF ops: one op for the whole batch)."""
        image, mask = example["image"], example.get("mask")
        if training and config.augment and transform is not None:
            without = mask is None  # albumentations always moves a mask
            image, mask = albumentations_augment(image, tf.zeros_like(image[..., :1]) if without else mask, transform)
            mask = None if without else mask
        elif training and config.augment:
            image, mask = augment_lib.augment(
                image, mask, config.rotation_degrees, config.flip_left_right, config.flip_up_down,
                config.brightness, config.contrast, config.crop_fraction,
            )
        leading = [None] * (image.shape.rank - 3)
        shaped = {"image": tf.ensure_shape(normalize(image, manifest), [*leading, size, size, channels])}
        if mask is not None:
            shaped["mask"] = tf.ensure_shape(mask, [*leading, size, size, 1])
        return {**example, **shaped}

    in_split = fold_filter(config, split, num_classes)
    if in_split is not None:
        dataset = dataset.filter(in_split)
    # Records are parsed, decoded and resized DECODE_BATCH at a time (raw records of one size in one op:
    # docs/benchmarks.md), then unbatched so that the cache and the shuffle see single examples.
    dataset = dataset.batch(DECODE_BATCH).map(
        lambda records: features.parse_batch(records, num_classes, channels, decode),
        num_parallel_calls=tf.data.AUTOTUNE, deterministic=not training,
    ).unbatch()
    if config.cache:
        dataset = dataset.cache()
        if training:
            dataset = dataset.shuffle(config.shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    per_replica = input_context.get_per_replica_batch_size(batch_size) if input_context else batch_size
    drop = training if drop_remainder is None else drop_remainder
    parallel = dict(num_parallel_calls=tf.data.AUTOTUNE, deterministic=not training)
    if transform is not None:  # host-side albumentations works on one image at a time
        dataset = dataset.map(augment_and_normalize, **parallel).batch(per_replica, drop_remainder=drop)
    else:
        dataset = dataset.batch(per_replica, drop_remainder=drop).map(augment_and_normalize, **parallel)
    return dataset.prefetch(tf.data.AUTOTUNE)


def to_keras(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """(image, label, sample_weight) tuples for `model.fit`."""
    return dataset.map(lambda b: (b["image"], b["label"], b["sample_weight"]), num_parallel_calls=tf.data.AUTOTUNE)


def distributed_dataset(
    strategy: tf.distribute.Strategy,
    data_dir: str,
    manifest: dict,
    split: str,
    config: DataConfig,
    training: bool,
    seed: int = 42,
):
    """A per-replica (image, label, weight) dataset built with `distribute_datasets_from_function`."""

    def dataset_fn(input_context: tf.distribute.InputContext) -> tf.data.Dataset:
        dataset = build_dataset(
            data_dir, manifest, split, config, training, config.batch_size, input_context, seed,
            drop_remainder=True, masks=False,
        )
        # Repeats: the caller bounds each pass with steps (Keras keeps the iterator across epochs when
        # steps are given), so every replica runs the same number of steps.
        return to_keras(dataset.repeat())

    return strategy.distribute_datasets_from_function(dataset_fn)
