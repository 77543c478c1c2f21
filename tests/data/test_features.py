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
