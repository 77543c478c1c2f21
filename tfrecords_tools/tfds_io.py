"""TensorFlow Datasets in both directions.

- `convert_tfds(name, out_dir)`: any `tfds.load`-able image-classification dataset (an `Image` feature
  and a `ClassLabel`, or a `Sequence(ClassLabel)` for multi-label) into the tfxmed schema. TFDS's
  `validation` split becomes `val`; without one, the last `val_percent`% of `train` is used (TFDS
  slicing, deterministic). Downloading needs the user's internet (`download=True`); with
  `download=False` the dataset must already be prepared under `data_dir`.
- `write_tfds_metadata(out_dir)`: writes TFDS metadata (`dataset_info.json`, `features.json`) next to
  a converted tfxmed folder so TFDS users can read it with `tfds.builder_from_directory(out_dir)`;
  the features mirror the tfxmed tf.Example keys (`image/encoded` decodes as an image, the mask stays
  PNG bytes because records without a mask hold empty bytes).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from tfrecords_tools.writer import DatasetWriter
from tfxmed.errors import Refusal
from tfxmed.storage import load_manifest

__all__ = ["convert_tfds", "write_tfds_metadata"]


def _label_feature(info, label_key: str):
    import tensorflow_datasets as tfds

    feature = info.features[label_key]
    if isinstance(feature, tfds.features.ClassLabel):
        return feature.names, False
    if isinstance(feature, tfds.features.Sequence) and isinstance(feature.feature, tfds.features.ClassLabel):
        return feature.feature.names, True
    raise Refusal(f"TFDS feature '{label_key}' must be a ClassLabel or a Sequence(ClassLabel); "
                  f"got {type(feature).__name__}")


def convert_tfds(
    name: str, out_dir: str, data_dir: str | None = None, image_key: str = "image", label_key: str = "label",
    val_percent: int = 10, download: bool = False, shard_examples: int = 0, salt: str = "", resume: bool = False,
    encoding: str = "auto",
) -> Iterator[int]:
    """Converts the TFDS dataset `name` (e.g. "malaria", "patch_camelyon") into `out_dir`; yields per example."""
    import tensorflow_datasets as tfds

    builder = tfds.builder(name, data_dir=data_dir)
    if download:
        builder.download_and_prepare()
    info = builder.info
    if image_key not in info.features:
        raise Refusal(f"TFDS dataset '{name}' has no feature '{image_key}'; features: {list(info.features)}")
    class_names, multi_label = _label_feature(info, label_key)
    shape = info.features[image_key].shape
    channels = shape[-1] if shape and shape[-1] in (1, 3) else 3
    splits = list(info.splits)
    plan = {"train": "train", "val": "validation", "test": "test"}
    if "validation" not in splits and "train" in splits:
        plan["train"], plan["val"] = f"train[:{100 - val_percent}%]", f"train[{100 - val_percent}%:]"
    fingerprint = f"{name}:{info.version}:{plan}:{image_key}:{label_key}:{data_dir}"
    with DatasetWriter(out_dir, f"tfds:{name}", class_names, multi_label=multi_label, channels=channels,
                       shard_examples=shard_examples, salt=salt, resume=resume, fingerprint=fingerprint,
                       encoding=encoding) as writer:
        for ours, theirs in plan.items():
            if theirs.split("[")[0] not in splits:
                continue
            for position, example in enumerate(tfds.as_numpy(builder.as_dataset(split=theirs))):
                image = np.asarray(example[image_key])
                if image.dtype != np.uint8:  # a cast would wrap 16-bit pixels around silently
                    raise Refusal(f"TFDS dataset '{name}', split {theirs}, example {position}: feature '{image_key}' "
                                  f"is {image.dtype}; expected uint8 images")
                if channels == 1:
                    image = image[..., :1]
                elif image.shape[-1] == 1:
                    image = np.repeat(image, 3, -1)
                label = example[label_key]
                if multi_label:
                    label = np.eye(len(class_names), dtype=np.float32)[np.asarray(label, int)].sum(0).clip(0, 1)
                writer.add(ours, image, label, source_id=f"{theirs}/{position}")
                yield 1
        writer.close({"tfds": {"name": name, "version": str(info.version), "splits": plan}})


def write_tfds_metadata(out_dir: str) -> str:
    """TFDS metadata for a converted tfxmed folder; returns the folder (`tfds.builder_from_directory` reads it)."""
    import tensorflow as tf
    import tensorflow_datasets as tfds

    manifest = load_manifest(out_dir)
    if manifest.get("smote") or manifest.get("gan"):
        raise Refusal(f"{out_dir}: generated shards (train-smote-*, train-gan-*) do not follow the TFDS file naming; "
                      "write the TFDS metadata for a folder without --smote or GAN samples")
    if manifest.get("encoding", "png") != "png":  # TFDS' Image feature decodes PNG only
        raise Refusal(f"{out_dir}: images are stored with encoding '{manifest['encoding']}'; TFDS metadata "
                      "describes PNG images: convert with --encoding png to read the folder with TFDS")
    classes, channels = manifest["num_classes"], manifest["channels"]
    scalar = lambda: tfds.features.Scalar(dtype=np.int64)  # noqa: E731
    text = lambda: tfds.features.Tensor(shape=(), dtype=tf.string)  # noqa: E731
    features = tfds.features.FeaturesDict({
        "image": {"encoded": tfds.features.Image(shape=(None, None, channels), encoding_format="png"),
                  "height": scalar(), "width": scalar(), "channels": scalar()},
        "label": {"index": scalar(), "vector": tfds.features.Tensor(shape=(classes,), dtype=np.float32),
                  "weight": tfds.features.Tensor(shape=(classes,), dtype=np.float32)},
        "mask": {"encoded": text(), "present": scalar()},
        "patient": {"hashed_id": text()},
        "source": {"id": text()},
        "split": text(),
        "fold": scalar(),
        "sample": {"synthetic": scalar()},
    })
    template = tfds.core.ShardedFileTemplate(  # = our train-00000.tfrecord names
        data_dir=out_dir, template="{SPLIT}-{SHARD_INDEX}.{FILEFORMAT}", dataset_name="tfxmed",
        filetype_suffix="tfrecord")
    split_infos = [tfds.core.SplitInfo(name=split, shard_lengths=[s["count"] for s in info["shards"]], num_bytes=0,
                                       filename_template=template.replace(split=split))
                   for split, info in manifest["splits"].items()]
    tfds.folder_dataset.write_metadata(
        data_dir=out_dir, features=features, split_infos=split_infos, filename_template=template, check_data=True,
        description=f"tfxmed records of {manifest['dataset']} (classes: {', '.join(manifest['class_names'])})",
    )
    return out_dir
