import numpy as np
import pytest
import tensorflow as tf

from tfxmed.data.volume_features import VolumeFields, parse_volume, serialize_volume, window_unit


def test_a_volume_round_trips_with_its_geometry_mask_and_labels(rng):
    volume = rng.integers(-1024, 3000, (5, 7, 9)).astype(np.int16)
    mask = np.zeros((5, 7, 9), np.uint8)
    mask[2, 3:5, 4:7] = 255
    direction = (0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    record = serialize_volume(VolumeFields(volume, np.array([0.0, 1.0]), 1, spacing=(2.5, 0.7, 0.7),
                                           direction=direction, mask=mask, patient_hash="abc", source_id="s/1",
                                           split="val", fold=3))
    assert record == serialize_volume(VolumeFields(volume, np.array([0.0, 1.0]), 1, spacing=(2.5, 0.7, 0.7),
                                                   direction=direction, mask=mask, patient_hash="abc",
                                                   source_id="s/1", split="val", fold=3))  # deterministic
    parsed = parse_volume(tf.constant(record), 2)
    np.testing.assert_array_equal(parsed["volume"].numpy(), volume)
    np.testing.assert_array_equal(parsed["mask"].numpy(), mask)
    assert bool(parsed["has_mask"]) and not bool(parsed["has_confounder"])
    assert not parsed["confounder"].numpy().any() and parsed["confounder"].shape == (5, 7, 9)
    np.testing.assert_allclose(parsed["spacing"].numpy(), [2.5, 0.7, 0.7])
    np.testing.assert_allclose(parsed["direction"].numpy(), direction)
    assert int(parsed["label_index"]) == 1 and parsed["patient"].numpy() == b"abc" and int(parsed["fold"]) == 3
    air = np.full((32, 32, 32), -1000, np.int16)  # a smooth volume compresses well (ZLIB)
    assert len(serialize_volume(VolumeFields(air, np.ones(1)))) < air.nbytes / 50


def test_bad_volumes_are_refused_with_what_was_expected(rng):
    with pytest.raises(ValueError, match=r"int16 \[D, H, W\]"):
        serialize_volume(VolumeFields(np.zeros((4, 4), np.int16), np.ones(1)))
    with pytest.raises(ValueError, match="mask must be uint8"):
        serialize_volume(VolumeFields(np.zeros((2, 4, 4), np.int16), np.ones(1), mask=np.zeros((2, 4, 5), np.uint8)))
    with pytest.raises(ValueError, match="spacing must be 3 positive"):
        serialize_volume(VolumeFields(np.zeros((2, 4, 4), np.int16), np.ones(1), spacing=(1.0, 0.0, 1.0)))


def test_the_window_maps_stored_units_onto_zero_one():
    hu = np.array([-2000, -1000, -300, 400, 1500], np.int16)
    np.testing.assert_allclose(window_unit(hu, (-1000, 400)), [0, 0, 0.5, 1, 1])
    np.testing.assert_allclose(window_unit(tf.constant(hu), (-1000, 400)).numpy(), [0, 0, 0.5, 1, 1])
    with pytest.raises(ValueError, match="high > low"):
        window_unit(hu, (400, -1000))
