"""Converters from source layouts into `DatasetWriter`: synthetic, MedMNIST `.npz`, class-per-folder.

Each converter is a generator of progress ticks so the CLI can draw one progress bar for all of them.
The MedMNIST converter lives in `tfrecords_tools.medmnist` (with the checks of its arrays).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence

from tfrecords_tools.boundary import OUTSIDE_ROOT_HINT, outside_roots
from tfrecords_tools.dicom import header_patient_id
from tfrecords_tools.items import Item, patient_split, stratified_split, write_items
from tfrecords_tools.medmnist import convert_medmnist, medmnist_size
from tfrecords_tools.writer import DatasetWriter
from tfxmed.data import synthetic
from tfxmed.errors import Refusal

__all__ = [
    "convert_synthetic",
    "convert_medmnist",
    "medmnist_size",
    "convert_folder",
    "IMAGE_EXTENSIONS",
]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".dcm", ".dicom")


def convert_synthetic(
    out_dir: str,
    image_size: int = 64,
    counts: dict[str, int] | None = None,
    positive_fraction: float = 0.5,
    difficulty: float = 0.5,
    multi_label: bool = False,
    confounder_strength: float = 0.0,
    seed: int = 42,
    shard_examples: int = 0,
    salt: str = "",
    resume: bool = False,
    encoding: str = "auto",
) -> Iterator[int]:
    """Generates the embedded synthetic benchmark and writes it; yields once per example."""
    counts = counts or {"train": 2000, "val": 400, "test": 400}
    base = synthetic.SyntheticSpec(
        image_size=image_size,
        positive_fraction=positive_fraction,
        difficulty=difficulty,
        multi_label=multi_label,
        confounder_strength=confounder_strength,
        seed=seed,
    )
    with DatasetWriter(
        out_dir,
        dataset_name="synthetic",
        class_names=synthetic.class_names(base),
        multi_label=multi_label,
        shard_examples=shard_examples,
        salt=salt,
        resume=resume,
        fingerprint=json.dumps({**base.__dict__, "counts": counts}, sort_keys=True),
        encoding=encoding,
    ) as writer:
        for split, count in counts.items():
            spec = synthetic.SyntheticSpec(**{**base.__dict__, "num_examples": count})
            batch = synthetic.generate(spec, split)
            for i in range(count):
                writer.add(
                    split,
                    batch.images[i],
                    batch.labels[i],
                    mask=batch.masks[i],
                    confounder=None if batch.markers is None else batch.markers[i],
                    patient_id=batch.patient_ids[i],
                    source_id=f"synthetic/{split}/{i:06d}",
                )
                yield 1
        writer.close({"synthetic_spec": {**base.__dict__, "counts": counts}})


def convert_folder(
    root: str,
    out_dir: str,
    channels: int = 1,
    fractions: Sequence[float] = (0.7, 0.2, 0.1),
    seed: int = 42,
    shard_examples: int = 0,
    salt: str = "",
    strict: bool = False,
    resume: bool = False,
    workers: int = 0,
    allow_outside_root: bool = False,
    encoding: str = "auto",
) -> Iterator[int]:
    """Converts `root/<class>/*.png` (or `root/<split>/<class>/*`) trees; `.dcm` files are read with pydicom.

    Without split folders the items are split per class (`stratified_split`), or by patient (with
    k-fold indices) when DICOM headers carry PatientIDs. Unreadable images are skipped and listed with
    the reason in `out_dir/skipped.csv` (or raise with `strict`) by their position, e.g. "item 3 of
    folder normal/" (the third image file of `normal/` in name order), never by a file name, which may
    carry a patient's name or MRN. Files and folders that resolve outside `root` (symbolic links) are
    skipped the same way unless `allow_outside_root`; an `out_dir` inside `root` is refused (it would
    be read as a class folder).
    """
    if not os.path.isdir(root):
        raise Refusal(f"{root}: not a folder; expected one sub-folder per class (e.g. {root}/normal/*.png)")
    if not outside_roots(out_dir, [root]):
        raise Refusal(f"--out {out_dir} is inside the image folder {root}: it would be read as a class; "
                      "choose an --out outside it")
    split_roots = [s for s in ("train", "val", "test") if os.path.isdir(os.path.join(root, s))]
    layout_root = os.path.join(root, split_roots[0]) if split_roots else root
    class_names = sorted(d for d in os.listdir(layout_root) if os.path.isdir(os.path.join(layout_root, d)))
    if not class_names:
        raise Refusal(f"{root}: expected one sub-folder per class (e.g. {root}/normal/*.png), found none")
    items: list[tuple[str, str, int, str]] = []  # (ref, path, label, split)
    refused: list[tuple[str, str]] = []
    for split in split_roots or [""]:
        for label, name in enumerate(class_names):
            folder, relative = os.path.join(root, split, name), f"{split}/{name}/" if split else f"{name}/"
            if not os.path.isdir(folder):
                continue
            if not allow_outside_root and outside_roots(folder, [root]):
                refused.append((f"folder {relative}", f"a symbolic link that resolves outside the root; "
                                                      f"{OUTSIDE_ROOT_HINT}"))
                continue
            names = sorted(n for n in os.listdir(folder) if n.lower().endswith(IMAGE_EXTENSIONS))
            for position, file_name in enumerate(names, start=1):
                ref, path = f"item {position} of folder {relative}", os.path.join(folder, file_name)
                if not allow_outside_root and outside_roots(path, [root]):
                    refused.append((ref, f"a symbolic link that resolves outside the root; {OUTSIDE_ROOT_HINT}"))
                else:
                    items.append((ref, path, label, split))
    # DICOM headers name the patient: split by patient then (hashed ids only ever stored).
    patients = [header_patient_id(path) for _, path, _, _ in items]
    folds = [-1] * len(items)
    labels = [label for _, _, label, _ in items]
    if not split_roots and any(patients):
        groups = [patient or f"file:{path}" for patient, (_, path, _, _) in zip(patients, items)]
        splits, folds = patient_split(groups, labels, fractions, 5, seed)
    else:
        splits = [split for _, _, _, split in items] if split_roots else stratified_split(labels, fractions, seed)

    # Folder and file names often carry patient names or ids: records keep only a salted HMAC of the path.
    records = [Item(ref=ref, path=path, label=label, split=split, patient=patient,
                    source=os.path.relpath(path, root), fold=fold)
               for (ref, path, label, _), split, patient, fold in zip(items, splits, patients, folds)]
    yield from write_items(records, out_dir, os.path.basename(os.path.normpath(root)), class_names, False, channels,
                           shard_examples, salt, strict, refused, resume=resume, workers=workers, encoding=encoding)
