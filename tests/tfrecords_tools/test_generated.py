import os

import numpy as np
import tensorflow as tf

from tfrecords_tools import sources
from tfrecords_tools.generated import append_generated, training_pixels
from tfxmed.data import features
from tfxmed.storage import load_manifest


def test_generated_images_go_into_their_own_flagged_training_shards_and_real_pixels_leave_them_out(tmp_path):
    out = str(tmp_path / "data")
    sum(sources.convert_synthetic(out, image_size=32, counts={"train": 10, "val": 4, "test": 4}, salt="s"))
    manifest = load_manifest(out)
    real, labels = training_pixels(out, manifest, 8)
    assert real.shape == (10, 64) and labels.shape == (10,)
    images = np.full((5, 8, 8, 1), 200, np.uint8)
    entry = append_generated(out, manifest, "demo", images, np.array([1, 1, 0, 1, 1]), {"note": "test"},
                             shard_examples=2)
    assert entry == {"added": 5, "per_class": {"normal": 1, "lesion": 4}, "note": "test"}
    after = load_manifest(out)
    shards = [shard for shard in after["splits"]["train"]["shards"] if "-demo-" in shard["file"]]
    assert [shard["count"] for shard in shards] == [2, 2, 1] and after["splits"]["train"]["count"] == 15
    parsed = [features.parse(raw, 2, 1) for shard in shards
              for raw in tf.data.TFRecordDataset(os.path.join(out, shard["file"]))]
    assert all(int(p["synthetic"]) == 1 and int(p["image"].numpy().max()) == 200 for p in parsed)
    assert [p["source"].numpy().decode() for p in parsed] == [f"demo/{i}" for i in range(5)]
    assert len(training_pixels(out, after, 8)[0]) == 10
    assert len(training_pixels(out, after, 8, real_only=False)[0]) == 15
