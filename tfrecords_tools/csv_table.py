"""Generic CSV converter: `path,label[,mask][,patient_id][,split]` rows → sharded TFRecords.

- `label` is a class name (or index); `a|b` lists several labels and makes the dataset multi-label.
- `.dcm` files are read with pydicom (`tfrecords_tools.dicom`: rescale, windowing, MONOCHROME1); their
  PatientID is used when the row has no `patient_id`, and stored only hashed.
- Without a `split` column, patients (not images) are split 70/20/10, stratified by each patient's
  label (binary: any positive), and every patient gets one of `folds` k-fold indices, so no patient is
  in two splits or two folds. Rows without `patient_id` count as their own patient.
- Patient ids are stored only as salted hashes; paths only as salted hashes of the relative path.
- Bad rows (missing file, empty label, unreadable image, mask of another size) are skipped and listed
  with the reason in `skipped.csv` (`strict=True` raises on the first one instead).
"""

from __future__ import annotations

import csv
import os
from typing import Iterator, Sequence

import numpy as np

from tfrecords_tools.dicom import header_patient_id
from tfrecords_tools.items import Item, patient_split, write_items

__all__ = ["convert_csv", "patient_split"]

REQUIRED_COLUMNS = ("path", "label")
SPLITS = ("train", "val", "test")


def _read_rows(csv_path: str) -> list[dict]:
    with open(csv_path, newline="", encoding="utf-8") as stream:
        reader = csv.DictReader(stream)
        columns = reader.fieldnames or []
        missing = [c for c in REQUIRED_COLUMNS if c not in columns]
        if missing:
            raise ValueError(f"{csv_path}: missing column(s) {missing}; expected path,label[,mask][,patient_id][,split], "
                             f"found {columns}")
        return list(reader)


def convert_csv(
    csv_path: str,
    out_dir: str,
    image_root: str | None = None,
    channels: int = 1,
    fractions: Sequence[float] = (0.7, 0.2, 0.1),
    folds: int = 5,
    seed: int = 42,
    shard_examples: int = 0,
    salt: str = "",
    strict: bool = False,
    resume: bool = False,
    workers: int = 0,
) -> Iterator[int]:
    """Converts the rows of `csv_path` (paths relative to `image_root`, default the CSV's folder)."""
    root = image_root or os.path.dirname(os.path.abspath(csv_path))
    rows = _read_rows(csv_path)
    skipped: list[tuple[int, str]] = []

    def skip(line: int, reason: str) -> None:
        if strict:
            raise ValueError(f"{csv_path}:{line}: {reason}")
        skipped.append((line, reason))  # reported by write_items

    items = []  # (line, row, label names)
    for line, row in enumerate(rows, start=2):  # line 1 is the header
        names = [name.strip() for name in (row.get("label") or "").split("|") if name.strip()]
        if not names:
            skip(line, "empty label")
        elif not os.path.isfile(os.path.join(root, row["path"])):
            skip(line, f"missing file (column path, relative to {root})")
        else:
            items.append((line, row, names))
    multi_label = any(len(names) > 1 for _, _, names in items)
    class_names = sorted({name for _, _, names in items for name in names})
    index = {name: i for i, name in enumerate(class_names)}
    encoded = [[index[name] for name in names] for _, _, names in items]
    patients = [row.get("patient_id") or header_patient_id(os.path.join(root, row["path"])) or f"row:{row['path']}"
                for _, row, _ in items]
    if "split" in (rows[0] if rows else {}):
        splits, item_folds = [row["split"] for _, row, _ in items], [-1] * len(items)
        bad = sorted({s for s in splits if s not in SPLITS})
        if bad:
            raise ValueError(f"{csv_path}: column split must be one of {SPLITS}; found {bad}")
    else:
        splits, item_folds = patient_split(patients, [max(e) for e in encoded], fractions, folds, seed)

    name = os.path.basename(csv_path)
    items = [
        Item(ref=f"{name}:{line}", path=os.path.join(root, row["path"]),
             label=np.eye(len(class_names))[labels].sum(0) if multi_label else labels[0],
             split=split, patient="" if patient.startswith("row:") else patient, source=row["path"], fold=fold,
             mask=os.path.join(root, row["mask"]) if row.get("mask") else None)
        for (line, row, _), labels, split, fold, patient in zip(items, encoded, splits, item_folds, patients)
    ]
    official = "split" in (rows[0] if rows else {})
    yield from write_items(items, out_dir, name, class_names, multi_label, channels, shard_examples, salt, strict,
                           [(f"{name}:{line}", reason) for line, reason in skipped],
                           {"folds": 0 if official else folds}, resume=resume, workers=workers)
