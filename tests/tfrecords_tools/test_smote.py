import itertools

import numpy as np
import pytest
import tensorflow as tf

from tfrecords_tools import sources
from tfrecords_tools.generated import training_pixels
from tfrecords_tools.smote import add_smote
from tfxmed.data import features
from tfxmed.storage import file_sha256, load_manifest


def _imbalanced(tmp_path):
    out = str(tmp_path / "imbalanced")
    sum(sources.convert_synthetic(out, image_size=32, counts={"train": 60, "val": 8, "test": 8},
                                  positive_fraction=0.15, shard_examples=20, salt="s"))
    return out


def test_smote_balances_flags_and_interpolates_between_minority_images(tmp_path):
    out = _imbalanced(tmp_path)
    before = load_manifest(out)
    counts = before["splits"]["train"]["class_counts"]
    minority = min(counts, key=counts.get)
    originals, labels = training_pixels(out, before, 16)
    entry = add_smote(out, size=16, k_neighbors=3)
    after = load_manifest(out)
    assert entry["added"] == abs(counts["lesion"] - counts["normal"]) and entry["space"] == "downsampled pixels"
    assert after["splits"]["train"]["class_counts"] == {n: max(counts.values()) for n in counts}
    assert after["pixel_mean"] == before["pixel_mean"]  # synthetic samples leave μ/σ alone
    smote_shards = [s for s in after["splits"]["train"]["shards"] if "smote" in s["file"]]
    assert all(file_sha256(f"{out}/{s['file']}") == s["sha256"] for s in smote_shards)

    seeds = originals[labels == before["class_names"].index(minority)]
    synthetic = []
    for shard in smote_shards:
        for raw in tf.data.TFRecordDataset(f"{out}/{shard['file']}"):
            example = features.parse(raw, 2, 1)
            assert int(example["synthetic"]) == 1 and not bool(example["has_mask"])
            assert example["patient"].numpy() == b""
            assert example["image"].shape == (16, 16, 1)
            synthetic.append(example["image"].numpy().reshape(-1).astype(np.float64))
    assert len(synthetic) == entry["added"]
    for sample in synthetic:  # on a segment between two minority images (up to uint8 rounding)
        residuals = []
        for a, b in itertools.combinations(seeds, 2):
            direction = b - a
            lam = np.clip(np.dot(sample - a, direction) / max(np.dot(direction, direction), 1e-9), 0, 1)
            residuals.append(np.abs(sample - (a + lam * direction)).max())
        assert min(residuals) <= 1.0  # other pairs are tens of grey levels away
    with pytest.raises(ValueError, match="already applied"):
        add_smote(out, size=16)


def test_smote_refuses_multi_label(tmp_path):
    out = str(tmp_path / "ml")
    sum(sources.convert_synthetic(out, image_size=32, counts={"train": 20, "val": 4, "test": 4}, multi_label=True,
                                  salt="s"))
    with pytest.raises(ValueError, match="multi-label"):
        add_smote(out)
