"""The one tf.Example schema of tfxmed, imported by the TFRecord writer and by the tf.data reader.

Keys and dtypes are declared once here so that the two sides cannot drift apart.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np
import tensorflow as tf

__all__ = [
    "SCHEMA_VERSION",
    "ENCODINGS",
    "RecordFields",
    "encode_png",
    "encode_image",
    "resolve_encoding",
    "serialize",
    "feature_spec",
    "parse",
    "parse_batch",
]

SCHEMA_VERSION = 1

IMAGE = "image/encoded"
# How IMAGE (and the masks) are stored: b"png" (absent: records written before the key existed), b"raw"
# (uint8 pixels, row-major [H, W, C]: nothing to decode) or b"jpeg" (lossy: masks stay PNG).
FORMAT = "image/format"
HEIGHT = "image/height"
WIDTH = "image/width"
CHANNELS = "image/channels"
LABEL_INDEX = "label/index"  # class index for single-label data, -1 for multi-label
LABEL_VECTOR = "label/vector"  # one-hot (single-label) or multi-hot (multi-label), float
LABEL_WEIGHT = "label/weight"  # per-label weight (0 = ignore, e.g. CheXpert U-Ignore), float
MASK = "mask/encoded"  # the lesion mask (PNG, or raw [H, W, 1] in raw records), empty bytes when there is none
HAS_MASK = "mask/present"
PATIENT = "patient/hashed_id"  # salted hash, never the raw id
SOURCE = "source/id"  # non-identifying id of the source item
SPLIT = "split"
FOLD = "fold"  # k-fold assignment, -1 when none
SYNTHETIC = "sample/synthetic"  # 1 for oversampled/SMOTE samples made at conversion time
# Where a known spurious cue is (a marker, text, a ruler): a mask stored like MASK, for the shortcut audit. Absent from
# records of datasets that annotate none (then `has_confounder` is 0 and the decoded mask is zeros).
CONFOUNDER = "confounder/encoded"
HAS_CONFOUNDER = "confounder/present"

# Record encodings a converter may choose (`--encoding`, `data.encoding`); tfxmed.config keeps the same tuple.
# "auto": raw up to AUTO_RAW_MAX_BYTES of pixels, PNG above (raw skips decoding, at the price of bytes
# on disk: see docs/benchmarks.md); "jpeg" is lossy and only chosen explicitly (large RGB photographs).
ENCODINGS = ("auto", "raw", "png", "jpeg")
AUTO_RAW_MAX_BYTES = 256 * 256  # e.g. 224-px grey images raw (measured 1.5x faster), 224-px RGB ones PNG
JPEG_QUALITY = 95


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
    encoding: str = "png"  # one of ENCODINGS


def encode_png(array: np.ndarray) -> bytes:
    """PNG bytes of a uint8 [H, W, C] array (C in 1, 3, 4)."""
    if array.dtype != np.uint8 or array.ndim != 3:
        raise ValueError(f"encode_png expects a uint8 [H, W, C] array, got {array.dtype} {array.shape}")
    return tf.io.encode_png(array).numpy()


def resolve_encoding(encoding: str, image: np.ndarray) -> str:
    """The stored format ("raw", "png" or "jpeg") of `image` under the converter's `encoding` option."""
    if encoding not in ENCODINGS:
        raise ValueError(f"encoding must be one of {', '.join(ENCODINGS)}; got '{encoding}'")
    if encoding == "auto":
        return "raw" if image.size <= AUTO_RAW_MAX_BYTES else "png"
    return encoding


def encode_image(array: np.ndarray, stored: str) -> bytes:
    """The bytes of a uint8 [H, W, C] array stored as `stored` ("raw", "png" or "jpeg")."""
    if array.dtype != np.uint8 or array.ndim != 3:
        raise ValueError(f"encode_image expects a uint8 [H, W, C] array, got {array.dtype} {array.shape}")
    if stored == "raw":
        return np.ascontiguousarray(array).tobytes()
    if stored == "jpeg":
        return tf.io.encode_jpeg(array, quality=JPEG_QUALITY).numpy()
    return encode_png(array)


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
    stored = resolve_encoding(fields.encoding, fields.image)
    mask_stored = "raw" if stored == "raw" else "png"  # a binary mask never goes through a lossy codec
    mask_bytes = b"" if fields.mask is None else encode_image(fields.mask, mask_stored)
    feature = {
        IMAGE: _bytes(encode_image(fields.image, stored)),
        HEIGHT: _ints([height]),
        WIDTH: _ints([width]),
        CHANNELS: _ints([channels]),
        LABEL_INDEX: _ints([fields.label_index]),
        LABEL_VECTOR: _floats(vector),
        LABEL_WEIGHT: _floats(weight),
        MASK: _bytes(mask_bytes),
        HAS_MASK: _ints([int(fields.mask is not None)]),
        PATIENT: _bytes(fields.patient_hash.encode()),
        SOURCE: _bytes(fields.source_id.encode()),
        SPLIT: _bytes(fields.split.encode()),
        FOLD: _ints([fields.fold]),
        SYNTHETIC: _ints([int(fields.synthetic)]),
    }
    if fields.confounder is not None:  # only then, so records of datasets without the annotation keep their bytes
        feature[CONFOUNDER] = _bytes(encode_image(fields.confounder, mask_stored))
        feature[HAS_CONFOUNDER] = _ints([1])
    if stored != "png":  # only then, so PNG records keep the bytes they had before the key existed
        feature[FORMAT] = _bytes(stored.encode())
    # deterministic: map entries in key order, so any process writes the same bytes for an example
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString(deterministic=True)


def feature_spec(num_classes: int, keys: Sequence[str] | None = None) -> dict:
    """The parsing spec for records of a dataset with `num_classes` labels (only `keys`, if given:
    parsing a few keys skips decoding what is not needed, e.g. to filter records)."""
    spec = {
        IMAGE: tf.io.FixedLenFeature([], tf.string),
        FORMAT: tf.io.FixedLenFeature([], tf.string, default_value=b"png"),
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


def _decode(data: tf.Tensor, key: str, raw: tf.Tensor, height, width, stored_channels, channels: int) -> tf.Tensor:
    """uint8 [H, W, channels] of one stored image or mask: raw bytes reshaped, PNG/JPEG decoded.

    A raw buffer must hold exactly height × width × stored channels bytes, and the stored channels must
    be the ones asked for (raw pixels are not converted); otherwise an InvalidArgument error names `key`.
    """
    def from_raw():
        pixels = tf.io.decode_raw(data, tf.uint8)
        expected = tf.cast(height * width * tf.cast(stored_channels, tf.int64), tf.int32)
        check = tf.debugging.Assert(
            tf.equal(tf.size(pixels), expected) & tf.equal(tf.cast(stored_channels, tf.int32), channels),
            [f"{key}: a raw buffer of", tf.size(pixels), f"bytes must hold {HEIGHT} x {WIDTH} x {CHANNELS} =",
             expected, f"bytes with {CHANNELS} =", stored_channels, f"(asked for {channels})"])
        with tf.control_dependencies([check]):
            return tf.reshape(pixels, tf.cast(tf.stack([height, width, channels]), tf.int32))

    def decoded():  # PNG or JPEG, told apart by their headers
        return tf.io.decode_image(data, channels=channels, dtype=tf.uint8, expand_animations=False)

    image = tf.cond(raw, from_raw, decoded)
    image.set_shape([None, None, channels])
    return image


def _example(parsed: dict, image: tf.Tensor, mask: tf.Tensor, confounder: tf.Tensor) -> dict:
    return {
        "image": image,
        "mask": mask,
        "has_mask": parsed[HAS_MASK] > 0,
        "label": parsed[LABEL_VECTOR],
        "label_weight": parsed[LABEL_WEIGHT],
        "label_index": parsed[LABEL_INDEX],
        "patient": parsed[PATIENT],
        "source": parsed[SOURCE],
        "fold": parsed[FOLD],
        "synthetic": parsed[SYNTHETIC],
        "confounder": confounder,
        "has_confounder": parsed[HAS_CONFOUNDER] > 0,
    }


def parse(serialized: tf.Tensor, num_classes: int, channels: int) -> dict:
    """Parses and decodes one serialized example into tensors.

    Returns a dict with `image` (uint8 [H, W, channels]), `mask` (uint8 [H, W, 1], zeros when the
    record has none), `has_mask`, `label` (float [K]), `label_weight`, `label_index`, `patient`,
    `source`, `fold`, `synthetic`, and `confounder` (uint8 [H, W, 1]) with `has_confounder`.
    """
    parsed = tf.io.parse_single_example(serialized, feature_spec(num_classes))
    raw = tf.equal(parsed[FORMAT], b"raw")
    height, width = parsed[HEIGHT], parsed[WIDTH]
    image = _decode(parsed[IMAGE], IMAGE, raw, height, width, parsed[CHANNELS], channels)
    mask = tf.cond(
        parsed[HAS_MASK] > 0,
        lambda: _decode(parsed[MASK], MASK, raw, height, width, 1, 1),
        lambda: tf.zeros_like(image[..., :1]),
    )
    confounder = tf.cond(
        parsed[HAS_CONFOUNDER] > 0,
        lambda: _decode(parsed[CONFOUNDER], CONFOUNDER, raw, height, width, 1, 1),
        lambda: tf.zeros_like(image[..., :1]),
    )
    return _example(parsed, image, mask, confounder)


def parse_batch(serialized: tf.Tensor, num_classes: int, channels: int, transform: Callable[[dict], dict]) -> dict:
    """`transform` of a batch [N] of serialized examples, parsed like `parse` with a leading batch axis.

    When every record of the batch is raw, of one height and width, with `channels` channels and buffers
    of the right length, the batch is parsed and reshaped at once: no per-record work at all. Otherwise
    each record goes through `parse` and `transform` (as a batch of one) on its own, so formats and
    sizes may mix as long as `transform` gives every record one shape (e.g. it resizes), and a bad raw
    buffer is reported by `parse`, naming its field.
    """
    parsed = tf.io.parse_example(serialized, feature_spec(num_classes))
    height, width = parsed[HEIGHT][0], parsed[WIDTH][0]
    pixels = height * width
    has_mask, has_confounder = parsed[HAS_MASK] > 0, parsed[HAS_CONFOUNDER] > 0

    def right_length(key: str, size: tf.Tensor, present: tf.Tensor | bool = True) -> tf.Tensor:
        lengths = tf.cast(tf.strings.length(parsed[key]), tf.int64)
        return tf.reduce_all(tf.equal(lengths, size) | tf.logical_not(present))

    uniform = tf.reduce_all(tf.stack([
        tf.reduce_all(tf.equal(parsed[FORMAT], b"raw")), tf.reduce_all(tf.equal(parsed[HEIGHT], height)),
        tf.reduce_all(tf.equal(parsed[WIDTH], width)), tf.reduce_all(tf.equal(parsed[CHANNELS], channels)),
        right_length(IMAGE, pixels * channels), right_length(MASK, pixels, has_mask),
        right_length(CONFOUNDER, pixels, has_confounder),
    ]))
    shape = tf.cast(tf.stack([-1, height, width, 1]), tf.int32)

    def masks(key: str, present: tf.Tensor) -> tf.Tensor:
        # Records without this mask hold no bytes: any same-length buffer stands in, then zeros replace it.
        filler = tf.strings.substr(parsed[IMAGE], 0, tf.cast(pixels, tf.int32))
        values = tf.reshape(tf.io.decode_raw(tf.where(present, parsed[key], filler), tf.uint8), shape)
        return values * tf.cast(present, tf.uint8)[:, None, None, None]

    def at_once() -> dict:
        images = tf.reshape(tf.io.decode_raw(parsed[IMAGE], tf.uint8), shape * [1, 1, 1, channels])
        images.set_shape([None, None, None, channels])
        return transform(_example(parsed, images, masks(MASK, has_mask), masks(CONFOUNDER, has_confounder)))

    def one(record: tf.Tensor) -> dict:
        batched = tf.nest.map_structure(lambda value: value[None], parse(record, num_classes, channels))
        return tf.nest.map_structure(lambda value: value[0], transform(batched))

    outputs = tf.function(one).get_concrete_function(tf.TensorSpec([], tf.string)).structured_outputs
    signature = tf.nest.map_structure(lambda value: tf.TensorSpec(value.shape, value.dtype), outputs)
    return tf.cond(uniform, at_once, lambda: tf.map_fn(one, serialized, fn_output_signature=signature))
