"""Resolves where a config's TFRecords live, generating the synthetic benchmark when needed."""

from __future__ import annotations

import hashlib
import json
import os

from tfxmed.config import Experiment

__all__ = ["synthetic_dataset_dir", "prepare_data"]


def synthetic_dataset_dir(config: Experiment) -> str:
    """`data.tfrecord_dir`, or `data/synthetic-<hash of the synthetic spec>` when it is empty."""
    if config.data.tfrecord_dir:
        return config.data.tfrecord_dir
    spec = {**config.data.synthetic.__dict__, "seed": config.runtime.seed}
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:10]
    return os.path.join("data", f"synthetic-{digest}")


def prepare_data(config: Experiment, progress: bool = True) -> str:
    """Returns the TFRecord folder for `config`, converting the synthetic default if it is missing."""
    from tfrecords_tools import sources
    from tfrecords_tools.salt import resolve_salt
    from tfrecords_tools.writer import MANIFEST_NAME

    if config.data.source == "tfrecords":
        if not os.path.exists(os.path.join(config.data.tfrecord_dir, MANIFEST_NAME)):
            raise FileNotFoundError(
                f"data.tfrecord_dir='{config.data.tfrecord_dir}' has no {MANIFEST_NAME}; "
                "convert a dataset with python -m tfrecords_tools.convert first"
            )
        return config.data.tfrecord_dir
    if config.data.source != "synthetic":
        raise ValueError(f"data.source must be 'synthetic' or 'tfrecords', got '{config.data.source}'")
    directory = synthetic_dataset_dir(config)
    if os.path.exists(os.path.join(directory, MANIFEST_NAME)):
        return directory
    spec = config.data.synthetic
    ticks = sources.convert_synthetic(
        directory,
        image_size=spec.image_size,
        counts={"train": spec.train_examples, "val": spec.val_examples, "test": spec.test_examples},
        positive_fraction=spec.positive_fraction,
        difficulty=spec.difficulty,
        multi_label=spec.multi_label,
        confounder_strength=spec.confounder_strength,
        seed=config.runtime.seed,
        shard_examples=max(64, (spec.train_examples + 3) // 4),
        salt=resolve_salt(directory),
    )
    if progress:
        from tqdm import tqdm

        total = spec.train_examples + spec.val_examples + spec.test_examples
        ticks = tqdm(ticks, total=total, unit="img", desc="synthetic → TFRecords")
    for _ in ticks:
        pass
    return directory
