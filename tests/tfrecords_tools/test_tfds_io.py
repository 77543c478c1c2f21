import numpy as np
import pytest

tfds = pytest.importorskip("tensorflow_datasets")

from tfrecords_tools import sources  # noqa: E402
from tfrecords_tools.tfds_io import convert_tfds, write_tfds_metadata  # noqa: E402
from tfxmed.errors import Refusal  # noqa: E402
from tfxmed.storage import load_manifest  # noqa: E402


class TinyXray(tfds.core.GeneratorBasedBuilder):
    """A TFDS dataset built locally (no download): 16-px grey images, label = brightness class."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(16, 16, 1)),
            "label": tfds.features.ClassLabel(names=["normal", "opacity", "effusion"]),
        }))

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(40, 0), "test": self._generate_examples(12, 1)}

    def _generate_examples(self, count, seed):
        rng = np.random.default_rng(seed)
        for i in range(count):
            label = i % 3
            image = (rng.integers(0, 60, (16, 16, 1)) + 80 * label).astype(np.uint8)
            yield f"{seed}-{i}", {"image": image, "label": label}


def test_tfds_dataset_converts_with_a_sliced_validation_split(tmp_path):
    data_dir = str(tmp_path / "tfds")
    builder = TinyXray(data_dir=data_dir)
    builder.download_and_prepare()
    out = str(tmp_path / "out")
    assert sum(convert_tfds("tiny_xray", out, data_dir=data_dir, val_percent=25, salt="s")) == 52
    manifest = load_manifest(out)
    assert manifest["class_names"] == ["normal", "opacity", "effusion"] and manifest["channels"] == 1
    assert {s: v["count"] for s, v in manifest["splits"].items()} == {"train": 30, "val": 10, "test": 12}
    originals = [int(e["label"]) for e in tfds.as_numpy(builder.as_dataset(split="train[:75%]"))]
    counts = manifest["splits"]["train"]["class_counts"]
    assert [counts[n] for n in manifest["class_names"]] == np.bincount(originals, minlength=3).tolist()
    with pytest.raises(ValueError, match="no feature 'pixels'"):
        sum(convert_tfds("tiny_xray", str(tmp_path / "bad"), data_dir=data_dir, image_key="pixels"))


def test_tfxmed_records_read_back_through_tfds(tmp_path):
    out = str(tmp_path / "syn")
    sum(sources.convert_synthetic(out, image_size=32, counts={"train": 12, "val": 4, "test": 4}, shard_examples=5,
                                  salt="s", encoding="png"))
    write_tfds_metadata(out)
    builder = tfds.builder_from_directory(out)
    assert builder.info.splits["train"].num_examples == 12
    examples = list(tfds.as_numpy(builder.as_dataset(split="test")))
    assert len(examples) == 4 and examples[0]["image"]["encoded"].shape == (32, 32, 1)
    import tensorflow as tf

    from tfxmed.data import features

    ours = [features.parse(raw, 2, 1) for raw in tf.data.TFRecordDataset(f"{out}/test-00000.tfrecord")]
    assert np.array_equal(examples[0]["image"]["encoded"], ours[0]["image"].numpy())
    assert np.array_equal(examples[0]["label"]["vector"], ours[0]["label"].numpy())


def test_cli_converts_a_prepared_tfds_dataset_and_writes_metadata(tmp_path):
    from tfrecords_tools.convert import main

    data_dir = str(tmp_path / "tfds")
    TinyXray(data_dir=data_dir).download_and_prepare()
    out = str(tmp_path / "cli")
    assert main(["tfds", "tiny_xray", "--data-dir", data_dir, "--out", out, "--salt", "s", "--tfds-metadata"]) == 0
    assert tfds.builder_from_directory(out).info.splits["test"].num_examples == 12


def test_tfds_metadata_is_refused_for_records_that_are_not_png(tmp_path):
    out = str(tmp_path / "raw")
    sum(sources.convert_synthetic(out, image_size=32, counts={"train": 4, "val": 2, "test": 2}, salt="s",
                                  encoding="raw"))
    with pytest.raises(Refusal, match="stored with encoding 'raw'; TFDS metadata describes PNG images: convert "
                                      "with --encoding png"):
        write_tfds_metadata(out)
