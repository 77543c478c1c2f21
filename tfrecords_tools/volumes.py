"""Volume converters (issue 15): synthetic CT, MedMNIST 3-D `.npz`, NIfTI and DICOM series → volume TFRecords.

Every converter writes the volume schema (`tfxmed.data.volume_features`) through the image converters'
`DatasetWriter`: sharded, atomic, resumable shards; unreadable items skipped and reported in
`skipped.csv` (by CSV row, never with header values); patient ids only hashed; patient-level splits
with k-fold indices (`tfrecords_tools.items.patient_split`) where a source has no official split.
The manifest adds `"kind": "volume"`, the intensity `window` and `pixel_mean`/`pixel_std`: the training
split's μ/σ of the windowed [0, 1] voxels.

- **synthetic**: the embedded chest-CT benchmark (`tfxmed.data.synthetic_volumes`), window [−1000, 400] HU.
- **medmnist3d**: OrganMNIST3D / NoduleMNIST3D-style `.npz` ({train,val,test}_{images,labels}, 28³ uint8),
  official splits, window [0, 255].
- **nifti**: a CSV of `path,label[,mask][,patient][,split]` (nibabel); volumes reoriented to the closest
  canonical orientation, then stored as (D, H, W) = (z, y, x) with spacing from the header.
- **dicom-series**: a CSV of `path,label[,split]` where `path` is a folder holding one series
  (`tfrecords_tools.dicom_series`); the patient is the hashed PatientID (the folder when it is blank).
  Masks for series are refused for now: a NIfTI mask's orientation is not matched to the series' axes.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections.abc import Callable, Iterator, Sequence

import numpy as np

from tfrecords_tools.items import _scrub, patient_split
from tfrecords_tools.writer import DatasetWriter, _empty_stats, hash_patient_id
from tfxmed.data import synthetic_volumes
from tfxmed.data.volume_features import IDENTITY_DIRECTION, VolumeFields, serialize_volume, window_unit
from tfxmed.errors import Refusal

__all__ = ["encode_volume_example", "convert_synthetic_volumes", "convert_medmnist3d", "convert_volume_table",
           "CT_WINDOW"]

CT_WINDOW = (-1000.0, 400.0)


def encode_volume_example(volume: np.ndarray, label: int, num_classes: int, split: str, window: Sequence[float],
                          spacing=(1.0, 1.0, 1.0), direction=IDENTITY_DIRECTION, mask=None, patient_hash: str = "",
                          source_id: str = "", fold: int = -1, confounder=None) -> tuple[bytes, dict]:
    """(record, statistics) of one single-label volume; the statistics are of the windowed [0, 1] voxels."""
    if not 0 <= int(label) < num_classes:
        raise ValueError(f"label must be in [0, {num_classes}), got {label}")
    vector = np.eye(num_classes, dtype=np.float32)[int(label)]
    binary = None if mask is None else (np.asarray(mask) > 0).astype(np.uint8) * 255
    record = serialize_volume(VolumeFields(np.asarray(volume), vector, int(label), spacing, direction, binary,
                                           confounder, None, patient_hash, source_id, split, fold))
    stats = {**_empty_stats(num_classes, 1), "count": 1, "class_counts": vector.astype(np.int64).tolist(),
             "with_mask": int(binary is not None)}
    if split == "train":
        unit = window_unit(volume, window).astype(np.float64).ravel()
        stats.update(pixel_sum=[float(unit.sum())], pixel_sum_squares=[float((unit**2).sum())],
                     pixel_count=int(unit.size))
    return record, stats


def _writer(out_dir: str, name: str, class_names, fingerprint: dict, shard_examples: int, salt: str,
            resume: bool) -> DatasetWriter:
    return DatasetWriter(out_dir, dataset_name=name, class_names=class_names, channels=1,
                         shard_examples=shard_examples or 64, salt=salt, resume=resume,
                         fingerprint=json.dumps(fingerprint, sort_keys=True, default=str), encoding="raw")


def convert_synthetic_volumes(out_dir: str, size: int = 32, counts: dict[str, int] | None = None,
                              positive_fraction: float = 0.5, difficulty: float = 0.5,
                              confounder_strength: float = 0.0, seed: int = 42, shard_examples: int = 0,
                              salt: str = "", resume: bool = False) -> Iterator[int]:
    """Generates the synthetic chest-CT benchmark into `out_dir`; yields once per volume."""
    counts = counts or {"train": 200, "val": 60, "test": 60}
    base = synthetic_volumes.VolumeSpec(size=size, positive_fraction=positive_fraction, difficulty=difficulty,
                                        confounder_strength=confounder_strength, seed=seed)
    options = {**base.__dict__, "counts": counts}
    window = synthetic_volumes.WINDOW
    with _writer(out_dir, "synthetic_volumes", ["normal", "nodule"], options, shard_examples, salt, resume) as writer:
        for split, count in counts.items():
            batch = synthetic_volumes.generate_volumes(
                synthetic_volumes.VolumeSpec(**{**base.__dict__, "num_examples": count}), split)
            for i in range(count):
                if not writer.take_covered(split):
                    writer.add_encoded(split, *encode_volume_example(
                        batch.volumes[i], batch.labels[i], 2, split, window, synthetic_volumes.SPACING,
                        mask=batch.masks[i], patient_hash=hash_patient_id(batch.patient_ids[i], writer.salt),
                        source_id=f"synthetic_volumes/{split}/{i:06d}",
                        confounder=None if batch.markers is None else batch.markers[i]))
                yield 1
        writer.close({"kind": "volume", "window": list(window), "synthetic_volume_spec": options})


def convert_medmnist3d(path: str, out_dir: str, shard_examples: int = 0, salt: str = "",
                       resume: bool = False) -> Iterator[int]:
    """A MedMNIST 3-D `.npz` (28³ uint8 volumes, single-label) with its official splits; yields per volume."""
    try:
        archive = np.load(path, allow_pickle=False)
        splits = {}
        for split in ("train", "val", "test"):
            if f"{split}_images" in archive:
                labels = archive[f"{split}_labels"]
                splits[split] = (archive[f"{split}_images"], labels.reshape(len(labels), -1))
    except (OSError, ValueError, KeyError) as error:
        raise Refusal(f"{path}: not a readable MedMNIST 3-D .npz ({error})") from error
    if "train" not in splits or any(images.ndim != 4 for images, _ in splits.values()):
        raise Refusal(f"{path}: expected train_images (and val/test) of shape [N, D, H, W] with their _labels")
    if any(labels.shape[1] != 1 for _, labels in splits.values()):
        raise Refusal(f"{path}: multi-label 3-D MedMNIST is not supported; expected one label per volume")
    classes = int(max(labels.max() for _, labels in splits.values())) + 1
    window = (0.0, 255.0)
    names = [f"class_{k}" for k in range(classes)]
    fingerprint = {"file": os.path.basename(path), "sizes": {s: len(v[0]) for s, v in splits.items()}}
    with _writer(out_dir, os.path.basename(path), names, fingerprint, shard_examples, salt, resume) as writer:
        for split, (images, labels) in splits.items():
            for i in range(len(images)):
                if not writer.take_covered(split):
                    writer.add_encoded(split, *encode_volume_example(
                        images[i].astype(np.int16), int(labels[i, 0]), classes, split, window,
                        source_id=f"{os.path.basename(path)}/{split}/{i}"))
                yield 1
        writer.close({"kind": "volume", "window": list(window)})


def _read_nifti(path: str, mask_path: str = ""):
    import nibabel

    def canonical(file: str):
        image = nibabel.as_closest_canonical(nibabel.load(file))
        data = np.asarray(image.get_fdata(dtype=np.float64))
        if data.ndim != 3:
            raise ValueError(f"expected a 3-D image, got shape {data.shape}")
        return image, data.transpose(2, 1, 0)  # (x, y, z) → (D, H, W) = (z, y, x)

    image, data = canonical(path)
    if data.min() < -32768 or data.max() > 32767:
        raise ValueError(f"values in [{data.min():g}, {data.max():g}] do not fit int16")
    zooms = image.header.get_zooms()[:3]
    axes = np.diag([-1.0, -1.0, 1.0]) @ (image.affine[:3, :3] / np.asarray(zooms))  # RAS → LPS
    direction = tuple(float(v) for v in np.concatenate([axes[:, 2], axes[:, 1], axes[:, 0]]))
    mask = None
    if mask_path:
        mask = canonical(mask_path)[1] > 0
        if mask.shape != data.shape:
            raise ValueError(f"mask shape {mask.shape} differs from the volume's {data.shape}")
    spacing = (float(zooms[2]), float(zooms[1]), float(zooms[0]))
    return np.round(data).astype(np.int16), spacing, direction, mask, ""


def _read_dicom_series(path: str, mask_path: str = ""):
    from tfrecords_tools.dicom_series import read_series

    if mask_path:  # a NIfTI mask is reoriented to canonical, the series keeps its DICOM axes: they would not align
        raise ValueError("column mask: masks for DICOM series are not supported yet (a NIfTI mask's orientation "
                         "is not matched to the series'); convert the series and its mask to NIfTI and use nifti")
    series = read_series(path)
    return series.volume, series.spacing, series.direction, None, series.patient_id


READERS: dict[str, Callable] = {"nifti": _read_nifti, "dicom-series": _read_dicom_series}


def _rows(csv_path: str) -> list[dict]:
    with open(csv_path, newline="", encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))
    if not rows or not {"path", "label"} <= set(rows[0]):
        raise Refusal(f"{csv_path}: expected a header with path,label[,mask][,patient][,split] and at least one row")
    return rows


def _patient_of(kind: str, path: str, row: dict) -> str:
    if row.get("patient"):
        return row["patient"]
    if kind == "dicom-series" and os.path.isdir(path):
        import pydicom

        for name in sorted(os.listdir(path)):
            try:
                found = str(pydicom.dcmread(os.path.join(path, name), stop_before_pixels=True).get("PatientID", ""))
            except Exception:  # noqa: BLE001 - any unreadable file: try the next one
                continue
            if found:  # an anonymised series (blank PatientID) is its own patient, by folder
                return found
            break
    return os.path.basename(os.path.normpath(path))


def convert_volume_table(kind: str, csv_path: str, out_dir: str, window: Sequence[float] = CT_WINDOW,
                         fractions: Sequence[float] = (0.7, 0.15, 0.15), folds: int = 5, seed: int = 42,
                         shard_examples: int = 0, salt: str = "", resume: bool = False) -> Iterator[int]:
    """Converts a CSV of NIfTI files (`kind="nifti"`) or DICOM series folders (`"dicom-series"`); yields per row."""
    if kind not in READERS:
        raise Refusal(f"volume source must be one of {', '.join(READERS)}; got '{kind}'")
    root, rows = os.path.dirname(os.path.abspath(csv_path)), _rows(csv_path)
    names = sorted({row["label"] for row in rows})
    paths = [os.path.join(root, row["path"]) for row in rows]
    patients = [_patient_of(kind, path, row) if os.path.exists(path) else f"row-{i}"
                for i, (path, row) in enumerate(zip(paths, rows))]
    labels = [names.index(row["label"]) for row in rows]
    splits, item_folds = patient_split(patients, labels, fractions, folds, seed)
    splits = [row.get("split") or split for row, split in zip(rows, splits)]
    # The journal (.progress.json) keeps this fingerprint: a digest of the rows, never their patient ids or paths.
    described = [{**row, "patient": bool(row.get("patient"))} for row in rows]
    digest = hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()
    fingerprint = {"rows": digest, "window": list(window), "fractions": list(fractions), "folds": folds, "seed": seed}
    with _writer(out_dir, os.path.basename(csv_path), names, fingerprint, shard_examples, salt, resume) as writer:
        for i, (row, path, split) in enumerate(zip(rows, paths, splits)):
            if writer.take_covered(split):
                yield 1
                continue
            mask_path = os.path.join(root, row["mask"]) if row.get("mask") else ""
            try:
                volume, spacing, direction, mask, patient_id = READERS[kind](path, mask_path)
                record = encode_volume_example(volume, labels[i], len(names), split, window, spacing, direction,
                                               mask, hash_patient_id(patient_id or patients[i], writer.salt),
                                               f"{kind}/row-{i + 2}", item_folds[i] if split != "test" else -1)
            except Exception as error:  # noqa: BLE001 - any unreadable item is skipped and reported, not fatal
                reason = f"{type(error).__name__}: {error}" if not isinstance(error, ValueError) else str(error)
                writer.skip(split, f"row {i + 2}", _scrub(reason, path, mask_path, row["path"], row.get("mask")))
            else:
                writer.add_encoded(split, *record)
            yield 1
        writer.close({"kind": "volume", "window": list(window), "source_kind": kind, "folds": folds})
