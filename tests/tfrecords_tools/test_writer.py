import hashlib
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from tfrecords_tools.writer import DatasetWriter, hash_patient_id
from tfxmed.data import features
from tfxmed.storage import load_manifest


def _write(tmp_path, rng, count=10, shard_examples=4, encoding="auto"):
    writer = DatasetWriter(str(tmp_path), "unit", ["normal", "lesion"], shard_examples=shard_examples, salt="s3cret",
                           encoding=encoding)
    items = []
    for i in range(count):
        image = rng.integers(0, 256, (20, 24, 1), dtype=np.uint8)
        mask = (rng.random((20, 24, 1)) > 0.8).astype(np.uint8) * 255 if i % 2 else None
        label = i % 2
        writer.add("train" if i < count - 2 else "val", image, label, mask=mask,
                   patient_id=f"Doe^Jane-{i}", source_id=f"item{i}")
        items.append((image, mask, label))
    return writer.close(), items


def _read_all(directory, manifest, split):
    files = [os.path.join(directory, s["file"]) for s in manifest["splits"][split]["shards"]]
    return [features.parse(r, manifest["num_classes"], 1) for r in tf.data.TFRecordDataset(files)]


@pytest.mark.parametrize("encoding", ["raw", "png"])
def test_round_trip_is_lossless(tmp_path, rng, encoding):
    manifest, items = _write(tmp_path, rng, encoding=encoding)
    assert manifest["encoding"] == encoding
    records = _read_all(tmp_path, manifest, "train") + _read_all(tmp_path, manifest, "val")
    assert len(records) == len(items)
    for record, (image, mask, label) in zip(records, items):
        np.testing.assert_array_equal(record["image"].numpy(), image)
        np.testing.assert_array_equal(record["label"].numpy(), np.eye(2)[label])
        assert bool(record["has_mask"]) == (mask is not None)
        expected_mask = np.zeros_like(image) if mask is None else mask
        np.testing.assert_array_equal(record["mask"].numpy(), expected_mask)


def test_manifest_counts_checksums_and_statistics(tmp_path, rng):
    manifest, items = _write(tmp_path, rng)
    train = manifest["splits"]["train"]
    assert train["count"] == 8 and manifest["splits"]["val"]["count"] == 2
    assert [s["count"] for s in train["shards"]] == [4, 4]
    assert train["class_counts"] == {"normal": 4, "lesion": 4}
    for shard in train["shards"]:
        digest = hashlib.sha256((tmp_path / shard["file"]).read_bytes()).hexdigest()
        assert digest == shard["sha256"]
    pixels = np.stack([image for image, _, _ in items[:8]]).astype(np.float64) / 255.0
    assert manifest["pixel_mean"][0] == pytest.approx(pixels.mean(), abs=1e-9)
    assert manifest["pixel_std"][0] == pytest.approx(pixels.std(), abs=1e-9)
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".tmp")]
    assert load_manifest(str(tmp_path)) == json.loads((tmp_path / "manifest.json").read_text())


def test_patient_ids_are_salted_hashes_never_plain(tmp_path, rng):
    _write(tmp_path, rng)
    blob = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert b"Doe^Jane" not in blob
    hashed = hash_patient_id("Doe^Jane-3", "s3cret")
    assert hashed.encode() in blob
    assert hashed != hash_patient_id("Doe^Jane-3", "other-salt")


def test_bad_inputs_raise_clear_errors(tmp_path):
    writer = DatasetWriter(str(tmp_path), "unit", ["a", "b"])
    with pytest.raises(ValueError, match=r"item7.*uint8 \[H, W, 1\]"):
        writer.add("train", np.zeros((4, 4, 3), np.uint8), 0, source_id="item7")
    with pytest.raises(ValueError, match=r"label for 'x' must be in \[0, 2\)"):
        writer.add("train", np.zeros((4, 4, 1), np.uint8), 5, source_id="x")
    with pytest.raises(ValueError, match="no training examples"):
        writer.close()
    with pytest.raises(FileNotFoundError, match="convert a dataset first"):
        load_manifest(str(tmp_path / "missing"))
