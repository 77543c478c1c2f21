"""The one tf.Example schema of tfxmed, imported by the TFRecord writer and by the tf.data reader.

Keys and dtypes are declared once here so that the two sides cannot drift apart.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np
import tensorflow as tf

__all__ = [
    "SCHEMA_VERSION",
    "RecordFields",
    "encode_png",
    "serialize",
    "feature_spec",
    "parse",
]

SCHEMA_VERSION = 1

IMAGE = "image/encoded"
HEIGHT = "image/height"
WIDTH = "image/width"
CHANNELS = "image/channels"
LABEL_INDEX = "label/index"  # class index for single-label data, -1 for multi-label
LABEL_VECTOR = "label/vector"  # one-hot (single-label) or multi-hot (multi-label), float
LABEL_WEIGHT = "label/weight"  # per-label weight (0 = ignore, e.g. CheXpert U-Ignore), float
MASK = "mask/encoded"  # PNG of the lesion mask, empty bytes when there is none
HAS_MASK = "mask/present"
PATIENT = "patient/hashed_id"  # salted hash, never the raw id
SOURCE = "source/id"  # non-identifying id of the source item
SPLIT = "split"
FOLD = "fold"  # k-fold assignment, -1 when none
SYNTHETIC = "sample/synthetic"  # 1 for oversampled/SMOTE samples made at conversion time
# Where a known spurious cue is (a marker, text, a ruler): PNG mask, for the shortcut audit. Absent from
# records of datasets that annotate none (then `has_confounder` is 0 and the decoded mask is zeros).
CONFOUNDER = "confounder/encoded"
HAS_CONFOUNDER = "confounder/present"


@dataclasses.dataclass
class RecordFields:
    """One example as the writer receives it (arrays in, bytes out)."""

    image: np.ndarray  # uint8 [H, W, C]
    label_vector: np.ndarray  # float [K]
    label_index: int = -1
    mask: np.ndarray | None = None  # uint8 [H, W, 1], 0 or 255
    label_weight: np.ndarray | None = None  # float [K]; defaults to ones
    patient_hash: str = ""
    source_id: str = ""
    split: str = "train"
    fold: int = -1
    synthetic: bool = False
    confounder: np.ndarray | None = None  # uint8 [H, W, 1], 0 or 255; None: not annotated


def encode_png(array: np.ndarray) -> bytes:
    """PNG bytes of a uint8 [H, W, C] array (C in 1, 3, 4)."""
    if array.dtype != np.uint8 or array.ndim != 3:
        raise ValueError(f"encode_png expects a uint8 [H, W, C] array, got {array.dtype} {array.shape}")
    return tf.io.encode_png(array).numpy()


def _bytes(value: bytes) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _ints(values) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=list(values)))


def _floats(values) -> tf.train.Feature:
    return tf.train.Feature(float_list=tf.train.FloatList(value=list(values)))


def serialize(fields: RecordFields) -> bytes:
    """Serialises one example into tf.Example bytes."""
    height, width, channels = fields.image.shape
    vector = np.asarray(fields.label_vector, dtype=np.float32).reshape(-1)
    weight = (
        np.ones_like(vector)
        if fields.label_weight is None
        else np.asarray(fields.label_weight, dtype=np.float32).reshape(-1)
    )
    if weight.shape != vector.shape:
        raise ValueError(f"label_weight has shape {weight.shape}, expected {vector.shape} like label_vector")
    mask_png = b"" if fields.mask is None else encode_png(fields.mask)
    feature = {
        IMAGE: _bytes(encode_png(fields.image)),
        HEIGHT: _ints([height]),
        WIDTH: _ints([width]),
        CHANNELS: _ints([channels]),
        LABEL_INDEX: _ints([fields.label_index]),
        LABEL_VECTOR: _floats(vector),
        LABEL_WEIGHT: _floats(weight),
        MASK: _bytes(mask_png),
        HAS_MASK: _ints([int(fields.mask is not None)]),
        PATIENT: _bytes(fields.patient_hash.encode()),
        SOURCE: _bytes(fields.source_id.encode()),
        SPLIT: _bytes(fields.split.encode()),
        FOLD: _ints([fields.fold]),
        SYNTHETIC: _ints([int(fields.synthetic)]),
    }
    if fields.confounder is not None:  # only then, so records of datasets without the annotation keep their bytes
        feature[CONFOUNDER] = _bytes(encode_png(fields.confounder))
        feature[HAS_CONFOUNDER] = _ints([1])
    # deterministic: map entries in key order, so any process writes the same bytes for an example
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString(deterministic=True)


def feature_spec(num_classes: int, keys: Sequence[str] | None = None) -> dict:
    """The parsing spec for records of a dataset with `num_classes` labels (only `keys`, if given:
    parsing a few keys skips decoding what is not needed, e.g. to filter records)."""
    spec = {
        IMAGE: tf.io.FixedLenFeature([], tf.string),
        HEIGHT: tf.io.FixedLenFeature([], tf.int64),
        WIDTH: tf.io.FixedLenFeature([], tf.int64),
        CHANNELS: tf.io.FixedLenFeature([], tf.int64),
        LABEL_INDEX: tf.io.FixedLenFeature([], tf.int64, default_value=-1),
        LABEL_VECTOR: tf.io.FixedLenFeature([num_classes], tf.float32),
        LABEL_WEIGHT: tf.io.FixedLenFeature([num_classes], tf.float32, default_value=[1.0] * num_classes),
        MASK: tf.io.FixedLenFeature([], tf.string, default_value=b""),
        HAS_MASK: tf.io.FixedLenFeature([], tf.int64, default_value=0),
        PATIENT: tf.io.FixedLenFeature([], tf.string, default_value=b""),
        SOURCE: tf.io.FixedLenFeature([], tf.string, default_value=b""),
        SPLIT: tf.io.FixedLenFeature([], tf.string, default_value=b""),
        FOLD: tf.io.FixedLenFeature([], tf.int64, default_value=-1),
        SYNTHETIC: tf.io.FixedLenFeature([], tf.int64, default_value=0),
        CONFOUNDER: tf.io.FixedLenFeature([], tf.string, default_value=b""),
        HAS_CONFOUNDER: tf.io.FixedLenFeature([], tf.int64, default_value=0),
    }
    return spec if keys is None else {key: spec[key] for key in keys}


def parse(serialized: tf.Tensor, num_classes: int, channels: int) -> dict:
    """Parses and decodes one serialized example into tensors.

    Returns a dict with `image` (uint8 [H, W, channels]), `mask` (uint8 [H, W, 1], zeros when the
    record has none), `has_mask`, `label` (float [K]), `label_weight`, `label_index`, `patient`,
    `source`, `fold`, `synthetic`, and `confounder` (uint8 [H, W, 1]) with `has_confounder`.
    """
    parsed = tf.io.parse_single_example(serialized, feature_spec(num_classes))
    image = tf.io.decode_png(parsed[IMAGE], channels=channels)
    has_mask = parsed[HAS_MASK] > 0
    mask = tf.cond(
        has_mask,
        lambda: tf.io.decode_png(parsed[MASK], channels=1),
        lambda: tf.zeros_like(image[..., :1]),
    )
    has_confounder = parsed[HAS_CONFOUNDER] > 0
    confounder = tf.cond(
        has_confounder,
        lambda: tf.io.decode_png(parsed[CONFOUNDER], channels=1),
        lambda: tf.zeros_like(image[..., :1]),
    )
    return {
        "image": image,
        "mask": mask,
        "has_mask": has_mask,
        "label": parsed[LABEL_VECTOR],
        "label_weight": parsed[LABEL_WEIGHT],
        "label_index": parsed[LABEL_INDEX],
        "patient": parsed[PATIENT],
        "source": parsed[SOURCE],
        "fold": parsed[FOLD],
        "synthetic": parsed[SYNTHETIC],
        "confounder": confounder,
        "has_confounder": has_confounder,
    }
