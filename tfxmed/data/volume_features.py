"""The tf.Example schema of volumes (CT, MRI), in the same TFRecord format as images and defined once here.

A volume record holds the voxels as stored by the scanner, so nothing is lost at conversion:

- `volume/encoded`: int16 voxels [D, H, W] (axial slices D; rows H; columns W), little-endian,
  ZLIB-compressed; CT in Hounsfield units after the DICOM rescale slope/intercept, MRI in its own units;
- `volume/shape` (D, H, W), `volume/spacing` (mm between slices, rows, columns) and
  `volume/direction`: the 3×3 direction cosines of the (D, H, W) axes in patient LPS coordinates,
  row-major (the identity for axial slices stacked feet to head);
- `volume/mask` and `volume/confounder` (uint8 [D, H, W], 0/255, ZLIB) with their `present` flags;
- the label, patient hash, source, split, fold and synthetic keys of the image schema
  (`tfxmed.data.features`), unchanged.

Intensities are mapped to [0, 1] by the dataset's **window** (`manifest["window"]`, [low, high] in
stored units: e.g. [-1000, 400] HU for chest CT, the lung-to-soft-tissue range), clipped outside it,
then standardised by the training split's μ/σ of the windowed values (`window_unit`).
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from tfxmed.data import features

__all__ = ["VolumeFields", "serialize_volume", "parse_volume", "window_unit", "volume_spec", "IDENTITY_DIRECTION"]

VOLUME = "volume/encoded"
SHAPE = "volume/shape"
SPACING = "volume/spacing"
DIRECTION = "volume/direction"
MASK = "volume/mask"
CONFOUNDER = "volume/confounder"
IDENTITY_DIRECTION = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)


@dataclasses.dataclass
class VolumeFields:
    """One volume example as the writer receives it."""

    volume: np.ndarray  # int16 [D, H, W]
    label_vector: np.ndarray  # float [K]
    label_index: int = -1
    spacing: Sequence[float] = (1.0, 1.0, 1.0)  # mm: slices, rows, columns
    direction: Sequence[float] = IDENTITY_DIRECTION
    mask: np.ndarray | None = None  # uint8 [D, H, W], 0 or 255
    confounder: np.ndarray | None = None
    label_weight: np.ndarray | None = None
    patient_hash: str = ""
    source_id: str = ""
    split: str = "train"
    fold: int = -1
    synthetic: bool = False


def _compressed(array: np.ndarray, dtype: str) -> bytes:
    return zlib.compress(np.ascontiguousarray(array, dtype=dtype).tobytes(), 6)


def _checked(name: str, array: np.ndarray | None, shape: tuple) -> np.ndarray | None:
    if array is None:
        return None
    array = np.asarray(array)
    if array.shape != shape or array.dtype != np.uint8:
        raise ValueError(f"{name} must be uint8 {shape} like the volume, got {array.dtype} {array.shape}")
    return array


def serialize_volume(fields: VolumeFields) -> bytes:
    """Serialises one volume example into tf.Example bytes (deterministic)."""
    volume = np.asarray(fields.volume)
    if volume.ndim != 3 or volume.dtype != np.int16:
        raise ValueError(f"volume must be int16 [D, H, W], got {volume.dtype} {volume.shape}")
    spacing, direction = np.asarray(fields.spacing, float), np.asarray(fields.direction, float)
    if spacing.shape != (3,) or np.any(spacing <= 0) or direction.shape != (9,):
        raise ValueError(f"spacing must be 3 positive mm values and direction 9 cosines, got {spacing}, {direction}")
    mask = _checked("mask", fields.mask, volume.shape)
    confounder = _checked("confounder", fields.confounder, volume.shape)
    vector = np.asarray(fields.label_vector, np.float32).reshape(-1)
    weight = np.ones_like(vector) if fields.label_weight is None else np.asarray(fields.label_weight, np.float32)
    feature = {
        VOLUME: features._bytes(_compressed(volume, "<i2")),
        SHAPE: features._ints(volume.shape),
        SPACING: features._floats(spacing),
        DIRECTION: features._floats(direction),
        MASK: features._bytes(b"" if mask is None else _compressed(mask, "u1")),
        features.HAS_MASK: features._ints([int(mask is not None)]),
        CONFOUNDER: features._bytes(b"" if confounder is None else _compressed(confounder, "u1")),
        features.HAS_CONFOUNDER: features._ints([int(confounder is not None)]),
        features.LABEL_INDEX: features._ints([fields.label_index]),
        features.LABEL_VECTOR: features._floats(vector),
        features.LABEL_WEIGHT: features._floats(weight.reshape(-1)),
        features.PATIENT: features._bytes(fields.patient_hash.encode()),
        features.SOURCE: features._bytes(fields.source_id.encode()),
        features.SPLIT: features._bytes(fields.split.encode()),
        features.FOLD: features._ints([fields.fold]),
        features.SYNTHETIC: features._ints([int(fields.synthetic)]),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString(deterministic=True)


def volume_spec(num_classes: int) -> dict:
    """The parsing spec of volume records with `num_classes` labels."""
    image_keys = [features.LABEL_INDEX, features.LABEL_VECTOR, features.LABEL_WEIGHT, features.HAS_MASK,
                  features.HAS_CONFOUNDER, features.PATIENT, features.SOURCE, features.SPLIT, features.FOLD,
                  features.SYNTHETIC]
    return {
        VOLUME: tf.io.FixedLenFeature([], tf.string),
        SHAPE: tf.io.FixedLenFeature([3], tf.int64),
        SPACING: tf.io.FixedLenFeature([3], tf.float32),
        DIRECTION: tf.io.FixedLenFeature([9], tf.float32, default_value=list(IDENTITY_DIRECTION)),
        MASK: tf.io.FixedLenFeature([], tf.string, default_value=b""),
        CONFOUNDER: tf.io.FixedLenFeature([], tf.string, default_value=b""),
        **features.feature_spec(num_classes, image_keys),
    }


def _voxels(data: tf.Tensor, dtype, shape: tf.Tensor, key: str) -> tf.Tensor:
    values = tf.io.decode_raw(tf.io.decode_compressed(data, "ZLIB"), dtype, little_endian=True)
    check = tf.debugging.Assert(tf.equal(tf.size(values, tf.int64), tf.reduce_prod(shape)),
                                [f"{key}: the decompressed voxels do not fill {SHAPE}", shape])
    with tf.control_dependencies([check]):
        return tf.reshape(values, tf.cast(shape, tf.int32))


def parse_volume(serialized: tf.Tensor, num_classes: int) -> dict:
    """One volume record → `volume` (int16 [D, H, W], as stored), `mask` / `confounder` (uint8 [D, H, W],
    zeros when absent), `spacing`, `direction`, and the label, patient, source, fold and synthetic keys
    named as `tfxmed.data.features.parse` names them."""
    parsed = tf.io.parse_single_example(serialized, volume_spec(num_classes))
    shape = parsed[SHAPE]
    volume = _voxels(parsed[VOLUME], tf.int16, shape, VOLUME)

    def optional(key: str, present: str) -> tf.Tensor:
        return tf.cond(parsed[present] > 0, lambda: _voxels(parsed[key], tf.uint8, shape, key),
                       lambda: tf.zeros(tf.cast(shape, tf.int32), tf.uint8))

    return {
        "volume": volume, "mask": optional(MASK, features.HAS_MASK),
        "confounder": optional(CONFOUNDER, features.HAS_CONFOUNDER),
        "has_mask": parsed[features.HAS_MASK] > 0, "has_confounder": parsed[features.HAS_CONFOUNDER] > 0,
        "spacing": parsed[SPACING], "direction": parsed[DIRECTION],
        "label": parsed[features.LABEL_VECTOR], "label_weight": parsed[features.LABEL_WEIGHT],
        "label_index": parsed[features.LABEL_INDEX], "patient": parsed[features.PATIENT],
        "source": parsed[features.SOURCE], "fold": parsed[features.FOLD], "synthetic": parsed[features.SYNTHETIC],
    }


def window_unit(volume, window: Sequence[float]):
    """Stored intensities → [0, 1] by the window [low, high] (clipped outside); NumPy or TensorFlow."""
    low, high = float(window[0]), float(window[1])
    if not high > low:
        raise ValueError(f"window must be [low, high] with high > low, got {list(window)}")
    if isinstance(volume, tf.Tensor):
        return tf.clip_by_value((tf.cast(volume, tf.float32) - low) / (high - low), 0.0, 1.0)
    return np.clip((np.asarray(volume, np.float32) - low) / (high - low), 0.0, 1.0)
