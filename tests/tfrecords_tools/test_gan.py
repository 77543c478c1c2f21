"""The conditional GAN (issue 14 §5): trained on the training split only, its samples flagged in shards of their
own (never validation or test, out of μ/σ), the two-sample test reported, and the command end to end."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from tfrecords_tools import sources
from tfrecords_tools.gan import add_gan, build_generator, main, two_sample_test
from tfrecords_tools.generated import training_pixels
from tfxmed.data import features
from tfxmed.errors import Refusal
from tfxmed.storage import file_sha256, load_manifest


def _converted(tmp_path):
    out = str(tmp_path / "data")
    sum(sources.convert_synthetic(out, image_size=32, counts={"train": 96, "val": 16, "test": 16},
                                  positive_fraction=0.5, shard_examples=32, salt="s"))
    return out


def test_the_gan_adds_flagged_training_samples_of_the_asked_class_and_reports_their_quality(tmp_path):
    out = _converted(tmp_path)
    before = load_manifest(out)
    entry = add_gan(out, ["lesion"], count=40, steps=30, size=16, batch=32)
    after = load_manifest(out)
    assert entry["added"] == 40 and entry["per_class"] == {"normal": 0, "lesion": 40}
    assert entry["trained_on"] == "train split only (96 real images)"
    assert after["splits"]["train"]["count"] == before["splits"]["train"]["count"] + 40
    counts = after["splits"]["train"]["class_counts"], before["splits"]["train"]["class_counts"]
    assert counts[0]["lesion"] == counts[1]["lesion"] + 40
    for split in ("val", "test"):
        assert after["splits"][split] == before["splits"][split]  # nothing generated outside training
    assert after["pixel_mean"] == before["pixel_mean"] and after["pixel_std"] == before["pixel_std"]
    shards = [shard for shard in after["splits"]["train"]["shards"] if "-gan-" in shard["file"]]
    assert shards and all(file_sha256(os.path.join(out, s["file"])) == s["sha256"] for s in shards)
    lesion = after["class_names"].index("lesion")
    for shard in shards:
        for raw in tf.data.TFRecordDataset(os.path.join(out, shard["file"])):
            example = features.parse(raw, 2, 1)
            assert int(example["synthetic"]) == 1 and int(example["label_index"]) == lesion
            assert not bool(example["has_mask"]) and example["patient"].numpy() == b""
            assert example["image"].shape == (16, 16, 1)
    quality = entry["c2st"]
    assert quality["real"] == quality["generated"] == 40 and 0.0 <= quality["accuracy"] <= 1.0
    assert os.path.getsize(os.path.join(out, "gan_samples.png")) > 1000
    real, _ = training_pixels(out, after, 16)
    assert len(real) == 96  # the generated samples are not real training images for a later step
    with pytest.raises(Refusal, match="already added"):
        add_gan(out, ["lesion"], count=4, steps=1, size=16, batch=32)


def test_more_samples_than_real_images_of_the_class_compare_against_all_of_them(tmp_path):
    out = _converted(tmp_path)  # 48 real lesion images in train
    entry = add_gan(out, ["lesion"], count=100, steps=2, size=16, batch=32)
    assert entry["added"] == 100 and entry["c2st"]["real"] == entry["c2st"]["generated"] == 48


def test_the_two_sample_test_tells_different_distributions_apart_and_not_the_same_one():
    rng = np.random.default_rng(0)
    real = rng.integers(0, 256, (200, 8, 8, 1)).astype(np.uint8)
    same = rng.integers(0, 256, (200, 8, 8, 1)).astype(np.uint8)
    shifted = np.clip(rng.integers(0, 256, (200, 8, 8, 1)) + 60, 0, 255).astype(np.uint8)
    assert two_sample_test(real, same)["accuracy"] < 0.6
    assert two_sample_test(real, shifted)["accuracy"] > 0.9


def test_bad_requests_are_refused_with_the_reason(tmp_path, capsys):
    out = _converted(tmp_path)
    with pytest.raises(Refusal, match=r"expected names from the manifest's classes \['normal', 'lesion'\]"):
        add_gan(out, ["tumour"], count=4)
    with pytest.raises(ValueError, match="4 · 2\\^k"):
        build_generator(24, 1, 2)
    assert main([out, "--classes", "lesion", "--count", "0"]) == 2
    assert "--count and --steps must be >= 1" in capsys.readouterr().err


@pytest.mark.slow
def test_the_command_writes_samples_the_pipeline_trains_on(tmp_path, capsys):
    from tfxmed.config import load_config
    from tfxmed.data import pipeline

    out = _converted(tmp_path)
    assert main([out, "--classes", "lesion", "--count", "16", "--steps", "20", "--size", "16", "--batch", "32"]) == 0
    entry = json.loads(capsys.readouterr().out)
    assert entry["added"] == 16 and entry["c2st"]["real"] == 16
    config = load_config(None, [f"data.tfrecord_dir={out}", "data.source=tfrecords", "data.image_size=32"])
    manifest = load_manifest(out)

    def count(split, data=config.data):
        dataset = pipeline.build_dataset(out, manifest, split, data, False, 8, drop_remainder=False)
        return sum(int(batch["image"].shape[0]) for batch in dataset)

    assert count("train") == 96 + 16 and count("val") == 16  # generated samples train, and only train
    folds = load_config(None, [f"data.tfrecord_dir={out}", "data.source=tfrecords", "data.cv_folds=2",
                               "data.cv_fold=0"]).data
    with pytest.raises(ValueError, match="SMOTE and GAN samples are made from every training patient"):
        count("val", folds)  # the GAN saw every fold's validation patients: k-fold on it would be optimistic
