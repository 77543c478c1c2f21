import numpy as np
import pytest

from tfxmed.data.synthetic_volumes import VolumeSpec, generate_volumes, marker_box


def test_nodules_are_masked_in_positives_only_and_stand_out_from_the_lung():
    batch = generate_volumes(VolumeSpec(size=32, num_examples=24))
    assert batch.volumes.shape == (24, 32, 32, 32) and batch.volumes.dtype == np.int16
    positive = batch.labels == 1
    assert positive.sum() == 12 and batch.markers is None
    assert all(batch.masks[i].any() for i in np.flatnonzero(positive))
    assert not batch.masks[~positive].any()
    inside = batch.volumes[batch.masks > 0].astype(float)
    lung = batch.volumes[(batch.volumes > -950) & (batch.volumes < -750)]
    assert np.median(inside) > np.median(lung) + 300  # a nodule is denser than the lung around it
    assert batch.patient_ids[0] == "SYNV-train-000000"
    again = generate_volumes(VolumeSpec(size=32, num_examples=24))
    assert np.array_equal(again.volumes, batch.volumes) and np.array_equal(again.masks, batch.masks)
    assert not np.array_equal(generate_volumes(VolumeSpec(size=32, num_examples=24), "val").volumes, batch.volumes)


def test_the_corner_cube_follows_the_label_in_train_only():
    spec = VolumeSpec(size=24, num_examples=200, confounder_strength=1.0, difficulty=1.0)
    train, test = generate_volumes(spec, "train"), generate_volumes(spec, "test")
    box = marker_box(24)
    for batch in (train, test):
        drawn = batch.markers[(slice(None), *box)].reshape(len(batch.labels), -1).all(axis=1)
        assert np.all(batch.volumes[(slice(None), *box)][drawn] == 1000)
        batch.drawn = drawn
    assert np.array_equal(train.drawn, train.labels == 1)  # strength 1: the cube is the label in train
    agreement = np.mean(test.drawn == (test.labels == 1))
    assert 0.35 < agreement < 0.65  # and chance elsewhere


def test_bad_specs_name_the_field():
    with pytest.raises(ValueError, match="VolumeSpec.size must be an integer >= 16"):
        generate_volumes(VolumeSpec(size=8))
    with pytest.raises(ValueError, match="VolumeSpec.confounder_strength must be in"):
        generate_volumes(VolumeSpec(confounder_strength=2.0))
