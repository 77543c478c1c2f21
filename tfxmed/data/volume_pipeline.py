"""tf.data for volumes (a manifest of `"kind": "volume"`): records → window → resample → augment → normalise → batch.

`pipeline.build_dataset` hands volume folders here, so training, evaluation and every strategy read
volumes as they read images, with batches of `image` [B, D, H, W, 1] (normalised float32), `mask`
[B, D, H, W, 1] in [0, 1], `label`, `label_weight` and `sample_weight`.

- **Sharding**: files per input pipeline (records when there are fewer files than pipelines), as for images.
- **Window**: stored units (HU) → [0, 1] by `manifest["window"]` (`tfxmed.data.volume_features.window_unit`).
- **Resampling**: trilinear (two bilinear passes, antialiased when shrinking) to `data.volume_depth` ×
  `image_size` × `image_size`; with `data.volume_spacing`, first to that spacing (mm) from each record's
  own, then centre-cropped or zero-padded to the shape.
- **Augmentation** (training): a left-right flip, a rotation in the axial plane (one angle for every
  slice, `rotation_degrees`), a random crop resized back (`crop_fraction`), and intensity jitter
  (`brightness`, `contrast`); the mask takes the same geometric transforms, so it stays aligned.
- **Memory**: records are shuffled serialized (never decoded volumes); a decoded batch above
  `data.volume_batch_megabytes` is refused with the largest batch that fits.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from tfxmed.config import DataConfig
from tfxmed.data.splits import class_weights, fold_filter, normalize, split_files
from tfxmed.data.volume_features import parse_volume, window_unit

__all__ = ["volume_shape", "resample", "crop_or_pad", "augment_volume", "build_volume_dataset", "check_batch_memory",
           "largest_batch"]


def volume_shape(config: DataConfig) -> tuple[int, int, int]:
    """(D, H, W) every volume is resampled to."""
    return (config.volume_depth or config.image_size, config.image_size, config.image_size)


def resample(volume: tf.Tensor, shape) -> tf.Tensor:
    """Trilinear resampling of [D, H, W, C] to `shape` (D', H', W'): rows and columns, then slices."""
    volume = tf.image.resize(volume, [shape[1], shape[2]], antialias=True)
    across = tf.transpose(volume, [1, 0, 2, 3])  # [H', D, W', C]: resize D (and keep W')
    across = tf.image.resize(across, [shape[0], shape[2]], antialias=True)
    return tf.transpose(across, [1, 0, 2, 3])


def crop_or_pad(volume: tf.Tensor, shape) -> tf.Tensor:
    """Centre crop or zero pad [D, H, W, C] to `shape` (D', H', W') along each axis."""
    for axis, target in enumerate(shape):
        size = tf.shape(volume)[axis]
        start = tf.maximum((size - target) // 2, 0)
        volume = tf.gather(volume, tf.range(start, start + tf.minimum(size, target)), axis=axis)
        before = tf.maximum((target - size) // 2, 0)
        after = tf.maximum(target - size - before, 0)
        paddings = tf.scatter_nd([[axis]], [[before, after]], [4, 2])
        volume = tf.pad(volume, paddings)
    return tf.ensure_shape(volume, [*shape, None])


def _rotation(angle: tf.Tensor, height: int, width: int) -> tf.Tensor:
    """The projective transform rotating [H, W] images by `angle` radians about their centre."""
    cos, sin = tf.cos(angle), tf.sin(angle)
    cy, cx = (height - 1) / 2.0, (width - 1) / 2.0
    return tf.stack([cos, -sin, cx - cos * cx + sin * cy, sin, cos, cy - sin * cx - cos * cy, 0.0, 0.0])


def augment_volume(volume: tf.Tensor, mask: tf.Tensor, config: DataConfig, seed: tf.Tensor):
    """Random geometric transforms applied alike to `volume` and `mask` ([D, H, W, 1] each), then intensity
    jitter of the volume (windowed [0, 1] values); `seed` is a stateless [2] seed."""
    shape = volume.shape[:3]
    seeds = tf.random.experimental.stateless_split(seed, 6)
    both = tf.concat([volume, mask], axis=-1)
    if config.flip_left_right:
        flip = tf.random.stateless_uniform([], seeds[0]) < 0.5
        both = tf.cond(flip, lambda: tf.reverse(both, [2]), lambda: both)
    if config.rotation_degrees > 0:
        angle = tf.random.stateless_uniform([], seeds[1], -1.0, 1.0) * config.rotation_degrees * math.pi / 180.0
        transform = tf.tile(_rotation(angle, shape[1], shape[2])[None], [shape[0], 1])
        both = tf.raw_ops.ImageProjectiveTransformV3(images=both, transforms=transform, output_shape=shape[1:3],
                                                     fill_value=0.0, interpolation="BILINEAR", fill_mode="CONSTANT")
    if config.crop_fraction > 0:
        keep = 1.0 - tf.random.stateless_uniform([3], seeds[2], 0.0, config.crop_fraction)
        sizes = tf.maximum(tf.cast(tf.round(keep * tf.cast(shape, tf.float32)), tf.int32), 1)
        offsets = tf.cast(tf.random.stateless_uniform([3], seeds[3]) * tf.cast(shape - sizes + 1, tf.float32),
                          tf.int32)
        box = tf.slice(both, tf.concat([offsets, [0]], 0), tf.concat([sizes, [2]], 0))
        both = resample(box, shape)
    volume, mask = both[..., :1], both[..., 1:]
    factor = 1.0 + tf.random.stateless_uniform([], seeds[4], -config.contrast, config.contrast)
    shift = tf.random.stateless_uniform([], seeds[5], -config.brightness, config.brightness)
    mean = tf.reduce_mean(volume)
    volume = tf.clip_by_value((volume - mean) * factor + mean + shift, 0.0, 1.0)
    return tf.ensure_shape(volume, [*shape, 1]), tf.ensure_shape(tf.clip_by_value(mask, 0.0, 1.0), [*shape, 1])


def largest_batch(config: DataConfig, shape=None) -> int:
    """How many decoded volumes with their masks (float32) fit in `data.volume_batch_megabytes` (at least 1)."""
    per_volume = 2 * 4 * int(np.prod(shape or volume_shape(config)))
    return max(int(config.volume_batch_megabytes * 2**20 // per_volume), 1)


def check_batch_memory(batch_size: int, shape, config: DataConfig) -> None:
    """Refuses a batch whose decoded volumes and masks (float32) exceed `data.volume_batch_megabytes`."""
    per_volume = 2 * 4 * int(np.prod(shape))
    fits = int(config.volume_batch_megabytes * 2**20 // per_volume)
    if batch_size > fits:
        raise ValueError(f"data.batch_size={batch_size}: a batch of {'×'.join(map(str, shape))} volumes with masks is "
                         f"{batch_size * per_volume / 2**20:.0f} MB, over data.volume_batch_megabytes="
                         f"{config.volume_batch_megabytes:g}; at most {fits} fit (or raise the bound, or make the "
                         "volumes smaller)")


def build_volume_dataset(data_dir: str, manifest: dict, split: str, config: DataConfig, training: bool,
                         batch_size: int, input_context=None, seed: int = 42, drop_remainder: bool | None = None,
                         masks: bool = True) -> tf.data.Dataset:
    """Batches of volume dicts (see the module docstring); the volume twin of `pipeline.build_dataset`."""
    shape = volume_shape(config)
    per_replica = input_context.get_per_replica_batch_size(batch_size) if input_context else batch_size
    check_batch_memory(per_replica, shape, config)
    files = split_files(data_dir, manifest, split, config)
    if not files:
        raise ValueError(f"{data_dir}: split '{split}' has no shards")
    dataset = tf.data.Dataset.from_tensor_slices(files)
    shard_records = input_context is not None and 1 < input_context.num_input_pipelines > len(files)
    if input_context is not None and input_context.num_input_pipelines > 1 and not shard_records:
        dataset = dataset.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
    if training:
        dataset = dataset.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.interleave(tf.data.TFRecordDataset, cycle_length=min(len(files), 4),
                                 num_parallel_calls=tf.data.AUTOTUNE, deterministic=not training or shard_records)
    if shard_records:
        dataset = dataset.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
    in_split = fold_filter(config, split, manifest["num_classes"])
    if in_split is not None:  # k-fold: this split's part of the pooled train+val records
        dataset = dataset.filter(in_split)
    if training:
        records = sum(manifest["splits"].get(name, {}).get("count", 0) for name in ("train", "val", split))
        dataset = dataset.shuffle(max(min(config.shuffle_buffer, records), 1), seed=seed, reshuffle_each_iteration=True)
    num_classes, window = manifest["num_classes"], manifest["window"]
    weights = tf.constant(class_weights(manifest) if config.class_weights else np.ones(num_classes), tf.float32)
    target = [float(v) for v in config.volume_spacing]

    def decode(serialized, random_seed):
        example = parse_volume(serialized, num_classes)
        volume = window_unit(example["volume"], window)[..., None]
        mask = tf.cast(example["mask"], tf.float32)[..., None] / 255.0
        both = tf.concat([volume, mask], axis=-1)
        if target:
            size = tf.cast(tf.shape(example["volume"]), tf.float32) * example["spacing"] / tf.constant(target)
            both = crop_or_pad(resample(both, tf.maximum(tf.cast(tf.round(size), tf.int32), 1)), shape)
        else:
            both = resample(both, shape)
        volume, mask = both[..., :1], both[..., 1:]
        if training and config.augment:
            volume, mask = augment_volume(volume, mask, config, random_seed)
        sample_weight = (example["label_weight"] if manifest["multi_label"]
                         else tf.reduce_max(example["label"] * weights, axis=-1))
        out = {"image": normalize(volume, manifest), "label": example["label"], "label_weight": example["label_weight"],
               "sample_weight": tf.cast(sample_weight, tf.float32)}
        if masks:
            out.update(mask=mask, has_mask=example["has_mask"])
        if not training:
            confounder = resample(tf.cast(example["confounder"], tf.float32)[..., None] / 255.0, shape)
            out.update(confounder=confounder, has_confounder=example["has_confounder"])
        return out

    # A fresh stateless seed per example and per pass (the stream is re-drawn each time it is iterated).
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
    dataset = tf.data.Dataset.zip((dataset, seeds)).map(decode, num_parallel_calls=tf.data.AUTOTUNE,
                                                        deterministic=not training)
    drop = training if drop_remainder is None else drop_remainder
    return dataset.batch(per_replica, drop_remainder=drop).prefetch(2)
