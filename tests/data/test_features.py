"""The one tf.Example schema (`tfxmed.data.features`): what the writer serialises is what the reader parses,
absent fields read as their defaults, and malformed inputs are refused with their shapes."""

import numpy as np
import pytest
import tensorflow as tf

from tfxmed.data import features
from tfxmed.data.features import RecordFields, encode_png, parse, serialize


def _fields(rng, **changes) -> RecordFields:
    mask = np.zeros((6, 5, 1), np.uint8)
    mask[1:3, 2:4] = 255
    values = dict(image=rng.integers(0, 256, (6, 5, 1), dtype=np.uint8), label_vector=np.array([0.0, 1.0, 0.0]),
                  label_index=1, mask=mask, label_weight=np.array([1.0, 0.0, 1.0]), patient_hash="ab12",
                  source_id="cd34", split="val", fold=3, synthetic=True, confounder=255 - mask)
    return RecordFields(**{**values, **changes})


def test_what_is_written_is_what_is_read(rng):
    fields = _fields(rng)
    parsed = {key: value.numpy() for key, value in parse(tf.constant(serialize(fields)), 3, 1).items()}
    np.testing.assert_array_equal(parsed["image"], fields.image)
    np.testing.assert_array_equal(parsed["mask"], fields.mask)
    np.testing.assert_array_equal(parsed["confounder"], fields.confounder)
    np.testing.assert_array_equal(parsed["label"], fields.label_vector)
    np.testing.assert_array_equal(parsed["label_weight"], fields.label_weight)
    assert parsed["has_mask"] and parsed["has_confounder"] and parsed["synthetic"] == 1
    assert (parsed["label_index"], parsed["fold"]) == (1, 3)
    assert (parsed["patient"], parsed["source"]) == (b"ab12", b"cd34")


def test_absent_fields_read_as_their_defaults(rng):
    fields = _fields(rng, mask=None, confounder=None, label_weight=None, label_index=-1, fold=-1, synthetic=False)
    parsed = parse(tf.constant(serialize(fields)), 3, 1)
    assert not parsed["has_mask"] and not parsed["mask"].numpy().any() and parsed["mask"].shape == (6, 5, 1)
    assert not parsed["has_confounder"] and not parsed["confounder"].numpy().any()
    np.testing.assert_array_equal(parsed["label_weight"], [1.0, 1.0, 1.0])  # every label counts
    serialized = tf.train.Example.FromString(serialize(fields)).features.feature
    assert features.CONFOUNDER not in serialized  # records without the annotation keep their old bytes


def test_serialisation_is_deterministic_and_reads_a_subset_of_keys(rng):
    fields = _fields(rng)
    assert serialize(fields) == serialize(fields)
    spec = features.feature_spec(3, [features.SPLIT, features.FOLD])
    assert set(spec) == {features.SPLIT, features.FOLD}
    keys = tf.io.parse_single_example(serialize(fields), spec)
    assert (keys[features.SPLIT].numpy(), int(keys[features.FOLD])) == (b"val", 3)


def test_malformed_inputs_are_refused_with_their_shapes(rng):
    with pytest.raises(ValueError, match=r"label_weight has shape \(2,\), expected \(3,\) like label_vector"):
        serialize(_fields(rng, label_weight=np.ones(2)))
    with pytest.raises(ValueError, match=r"encode_png expects a uint8 \[H, W, C\] array, got float32 \(4, 4\)"):
        encode_png(np.zeros((4, 4), np.float32))


@pytest.mark.parametrize("encoding", ["raw", "png", "auto"])
@pytest.mark.parametrize("channels", [1, 3])
def test_lossless_encodings_round_trip_exactly(rng, encoding, channels):
    fields = _fields(rng, image=rng.integers(0, 256, (6, 5, channels), dtype=np.uint8), encoding=encoding)
    parsed = parse(tf.constant(serialize(fields)), 3, channels)
    np.testing.assert_array_equal(parsed["image"], fields.image)
    np.testing.assert_array_equal(parsed["mask"], fields.mask)
    np.testing.assert_array_equal(parsed["confounder"], fields.confounder)
    stored = tf.train.Example.FromString(serialize(fields)).features.feature
    if encoding == "png":  # PNG records keep the bytes they had before the format key existed
        assert features.FORMAT not in stored
    else:  # auto: raw for an image this small
        assert stored[features.FORMAT].bytes_list.value == [b"raw"]
        assert stored[features.IMAGE].bytes_list.value[0] == fields.image.tobytes()


def test_jpeg_is_close_and_its_masks_stay_exact():
    image = np.tile(np.linspace(0, 255, 32, dtype=np.uint8)[None, :, None], (32, 1, 3))  # smooth: JPEG's case
    mask = np.zeros((32, 32, 1), np.uint8)
    mask[4:20, 8:24] = 255
    fields = RecordFields(image=image, label_vector=np.array([1.0, 0.0]), mask=mask, encoding="jpeg")
    parsed = parse(tf.constant(serialize(fields)), 2, 3)
    assert np.abs(parsed["image"].numpy().astype(int) - image).max() <= 8
    np.testing.assert_array_equal(parsed["mask"], mask)  # a binary mask never goes through JPEG


def test_auto_stores_large_images_as_png(rng):
    small, large = np.zeros((64, 64, 1), np.uint8), np.zeros((512, 512, 1), np.uint8)
    assert features.resolve_encoding("auto", small) == "raw"
    assert features.resolve_encoding("auto", large) == "png"
    with pytest.raises(ValueError, match="encoding must be one of auto, raw, png, jpeg; got 'bmp'"):
        features.resolve_encoding("bmp", small)


def _with_bytes(record: bytes, key: str, value: bytes) -> bytes:
    example = tf.train.Example.FromString(record)
    example.features.feature[key].bytes_list.value[0] = value
    return example.SerializeToString()


@pytest.mark.parametrize("key", [features.IMAGE, features.MASK])
def test_a_raw_buffer_of_the_wrong_length_names_the_field(rng, key):
    record = serialize(_fields(rng, encoding="raw"))
    broken = _with_bytes(record, key, b"\0" * 7)
    with pytest.raises(tf.errors.InvalidArgumentError, match=rf"{key}: a raw buffer of\] \[7\] \[bytes must hold "
                                                             r"image/height x image/width x image/channels"):
        list(tf.data.Dataset.from_tensors(broken).map(lambda s: parse(s, 3, 1)))


def test_raw_pixels_are_not_converted_between_channel_counts(rng):
    record = serialize(_fields(rng, encoding="raw"))  # one channel stored
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"(?s)image/encoded: a raw buffer.*\(asked for 3\)"):
        parse(tf.constant(record), 3, 3)


def test_a_batch_parses_like_single_records_whatever_their_encodings(rng):
    records = [serialize(_fields(rng, encoding=encoding, mask=mask))
               for encoding in ("raw", "png", "raw") for mask in (None, np.full((6, 5, 1), 255, np.uint8))]
    keep = lambda example: {key: example[key] for key in ("image", "mask", "confounder", "label")}  # noqa: E731
    for chosen in (records[:2] + records[4:], records):  # all raw: at once; mixed: one record at a time
        batch = features.parse_batch(tf.constant(chosen), 3, 1, keep)
        for i, record in enumerate(chosen):
            single = parse(tf.constant(record), 3, 1)
            for key in ("image", "mask", "confounder", "label"):
                np.testing.assert_array_equal(batch[key][i], single[key])
