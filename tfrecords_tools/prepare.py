"""Resolves where a config's TFRecords live, converting the synthetic or MedMNIST source when needed."""

from __future__ import annotations

import hashlib
import json
import os

from tfrecords_tools import sources
from tfrecords_tools.salt import resolve_salt
from tfxmed.config import Experiment
from tfxmed.config_choices import DATA_SOURCES as SOURCES
from tfxmed.errors import OutputExistsError
from tfxmed.storage import MANIFEST_NAME, exists, file_sha256, open_file, write_json_atomic

__all__ = ["dataset_dir", "prepare_data", "SOURCES"]

SOURCE_MARKER = "converted_from.json"  # in a data.tfrecord_dir tfxmed converted into: what it holds


def dataset_dir(config: Experiment) -> str:
    """`data.tfrecord_dir`, else a folder under `data/` named by what is converted into it.

    Synthetic: `data/synthetic-<hash of the spec and seed>`; MedMNIST: `data/<npz stem>-<hash of the
    file's bytes>`, so a changed file is converted again rather than silently reused. A `data.encoding`
    other than png adds `-<encoding>` (PNG folders keep the names they had before encodings existed).
    """
    data = config.data
    if data.tfrecord_dir:
        return data.tfrecord_dir
    encoding = "" if data.encoding == "png" else f"-{data.encoding}"
    stem = os.path.splitext(os.path.basename(data.npz))[0] if data.source == "medmnist" else data.source
    return os.path.join("data", f"{stem}-{_content_digest(config)[:10]}{encoding}")


def _content_digest(config: Experiment) -> str:
    """What a conversion of `config`'s source holds: the .npz file's sha256, or the synthetic spec's and seed's."""
    if config.data.source == "medmnist":
        return file_sha256(config.data.npz)
    spec = {**config.data.synthetic.__dict__, "seed": config.runtime.seed}
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def _what_it_holds(config: Experiment) -> dict:
    """What a named folder records: the source and, for MedMNIST, the file's sha256. A named folder of
    synthetic records is reused whatever the spec and seed (pinning a folder pins the data: name one per spec)."""
    digest = file_sha256(config.data.npz) if config.data.source == "medmnist" else ""
    return {"source": config.data.source, "digest": digest, "encoding": config.data.encoding}


def _check_reuse(config: Experiment, directory: str) -> None:
    """Refuses to train on a `data.tfrecord_dir` that holds the conversion of another source or file."""
    expected = _what_it_holds(config)
    marker = os.path.join(directory, SOURCE_MARKER)
    if exists(marker):
        with open_file(marker) as stream:
            found = json.load(stream)
    else:  # converted before the marker existed: the manifest's dataset name is what can be checked
        with open_file(os.path.join(directory, MANIFEST_NAME)) as stream:
            name = json.load(stream).get("dataset")
        wanted = os.path.basename(config.data.npz) if config.data.source == "medmnist" else config.data.source
        found = expected if name == wanted else {"dataset": name}
    if found != expected:
        what = config.data.npz if config.data.source == "medmnist" else f"the {config.data.source} benchmark"
        raise OutputExistsError(
            f"data.tfrecord_dir='{directory}' already holds another conversion ({found}), not one of {what}; "
            "give an empty folder (or none: tfxmed names one by content), or data.source=tfrecords to train on it")


def _conversion(config: Experiment, directory: str, salt: str):
    """(progress ticks, total) of converting the configured source into `directory`."""
    if config.data.source == "medmnist":
        total = sources.medmnist_size(config.data.npz)
        return sources.convert_medmnist(config.data.npz, directory, shard_examples=max(256, total // 8), salt=salt,
                                        resume=True, encoding=config.data.encoding), total
    spec = config.data.synthetic
    counts = {"train": spec.train_examples, "val": spec.val_examples, "test": spec.test_examples}
    if config.data.source == "synthetic_volumes":
        from tfrecords_tools.volumes import convert_synthetic_volumes

        if spec.multi_label:
            raise ValueError("data.synthetic.multi_label: the synthetic volume benchmark is single-label "
                             "(nodule or not)")
        return convert_synthetic_volumes(directory, spec.image_size, counts, spec.positive_fraction, spec.difficulty,
                                         spec.confounder_strength, config.runtime.seed, salt=salt,
                                         resume=True), sum(counts.values())
    ticks = sources.convert_synthetic(
        directory,
        image_size=spec.image_size,
        counts=counts,
        positive_fraction=spec.positive_fraction,
        difficulty=spec.difficulty,
        multi_label=spec.multi_label,
        confounder_strength=spec.confounder_strength,
        seed=config.runtime.seed,
        shard_examples=max(64, (spec.train_examples + 3) // 4),
        salt=salt,
        resume=True,  # the folder is named by its content: a killed first conversion continues
        encoding=config.data.encoding,
    )
    return ticks, sum(counts.values())


def prepare_data(config: Experiment, progress: bool = True) -> str:
    """Returns the TFRecord folder for `config`, converting its source first if that folder is missing."""
    source = config.data.source
    if source not in SOURCES:
        raise ValueError(f"data.source must be one of {', '.join(SOURCES)}; got '{source}'")
    if source == "tfrecords":
        if not exists(os.path.join(config.data.tfrecord_dir, MANIFEST_NAME)):
            raise FileNotFoundError(
                f"data.tfrecord_dir='{config.data.tfrecord_dir}' has no {MANIFEST_NAME}; "
                "convert a dataset with python -m tfrecords_tools.convert first"
            )
        return config.data.tfrecord_dir
    if source == "medmnist" and not os.path.isfile(config.data.npz):
        raise FileNotFoundError(
            f"data.npz='{config.data.npz}': no such file (data.source=medmnist needs a MedMNIST .npz)")
    directory = dataset_dir(config)
    if exists(os.path.join(directory, MANIFEST_NAME)):
        if config.data.tfrecord_dir:  # a folder named by the user, not by content: check what it holds
            _check_reuse(config, directory)
        return directory
    ticks, total = _conversion(config, directory, resolve_salt())
    if progress:
        from tqdm import tqdm

        ticks = tqdm(ticks, total=total, unit="img", desc=f"{source} → TFRecords")
    for _ in ticks:
        pass
    if config.data.tfrecord_dir:  # written last: the converters only write into folders of their own
        write_json_atomic(_what_it_holds(config), os.path.join(directory, SOURCE_MARKER))
    return directory
