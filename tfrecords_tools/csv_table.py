"""Generic CSV converter: `path,label[,mask][,patient_id][,split]` rows → sharded TFRecords.

- `label` is a class name (or index); `a|b` lists several labels and makes the dataset multi-label.
- `.dcm` files are read with pydicom (`tfrecords_tools.dicom`: rescale, windowing, MONOCHROME1); their
  PatientID is used when the row has no `patient_id`, and stored only hashed.
- Without a `split` column, patients (not images) are split 70/20/10, stratified by each patient's
  label (binary: any positive), and every patient gets one of `folds` k-fold indices, so no patient is
  in two splits or two folds. Rows without `patient_id` count as their own patient.
- Patient ids are stored only as salted hashes; paths only as salted hashes of the relative path.
- Bad rows (missing or empty field, missing file, a path or mask that resolves outside the image root,
  unreadable image, mask of another size, a second listing of an image) are skipped and listed by CSV
  line with the reason in `skipped.csv` (`strict=True` raises on the first one instead). Paths may not
  leave the image root (`..`, absolute paths, symbolic links) unless `allow_outside_root=True`.
- A bad table is refused (`Refusal`) before anything is written: missing columns, text that is not
  UTF-8 CSV, split values other than train / val / test, or no `train` row in the split column.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

import numpy as np

from tfrecords_tools.boundary import OUTSIDE_ROOT_HINT, outside_roots, ragged_row, read_table
from tfrecords_tools.dicom import header_patient_id
from tfrecords_tools.items import Item, patient_split, write_items
from tfxmed.errors import Refusal

__all__ = ["convert_csv", "patient_split"]

REQUIRED_COLUMNS = ("path", "label")
SPLITS = ("train", "val", "test")


def _read_rows(csv_path: str) -> list[dict]:
    columns, rows = read_table(csv_path)
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise Refusal(f"{csv_path}: missing column(s) {missing}; expected path,label[,mask][,patient_id][,split], "
                      f"found {columns}")
    return rows


def _path_problem(row: dict, column: str, root: str, allow_outside_root: bool) -> str | None:
    """Why `row[column]` is not a file under `root` to read, or None. Never quotes the path itself."""
    value = row.get(column)
    if not isinstance(value, str) or not value.strip():
        return f"column {column}: empty (expected a file path relative to the image root)"
    if "\0" in value:
        return f"column {column}: not a valid path (it holds a NUL character)"
    path = os.path.join(root, value)
    if not allow_outside_root and outside_roots(path, [root]):
        return (f"column {column}: resolves outside the image root ('..', an absolute path or a symbolic link); "
                f"{OUTSIDE_ROOT_HINT}")
    if not os.path.isfile(path):
        return f"missing file (column {column}, relative to the image root)"
    return None


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
    allow_outside_root: bool = False,
    encoding: str = "auto",
) -> Iterator[int]:
    """Converts the rows of `csv_path` (paths relative to `image_root`, default the CSV's folder)."""
    root = image_root or os.path.dirname(os.path.abspath(csv_path))
    rows = _read_rows(csv_path)
    official = "split" in (rows[0] if rows else {})
    skipped: list[tuple[int, str]] = []

    def skip(line: int, reason: str) -> None:
        if strict:
            raise Refusal(f"{csv_path}:{line}: {reason}")
        skipped.append((line, reason))  # reported by write_items

    items = []  # (line, row, label names)
    for line, row in enumerate(rows, start=2):  # line 1 is the header
        label = row.get("label")
        names = [name.strip() for name in label.split("|") if name.strip()] if isinstance(label, str) else []
        problem = _path_problem(row, "path", root, allow_outside_root)
        if not problem and isinstance(row.get("mask"), str) and row["mask"].strip():
            problem = _path_problem(row, "mask", root, allow_outside_root)
        if ragged := ragged_row(row):
            skip(line, ragged)
        elif not names:
            skip(line, "empty label")
        elif problem:
            skip(line, problem)
        elif official and not (isinstance(row.get("split"), str) and row["split"].strip()):
            skip(line, f"column split: empty (expected one of {', '.join(SPLITS)})")
        else:
            items.append((line, row, names))
    multi_label = any(len(names) > 1 for _, _, names in items)
    class_names = sorted({name for _, _, names in items for name in names})
    index = {name: i for i, name in enumerate(class_names)}
    encoded = [[index[name] for name in names] for _, _, names in items]
    patients = [row.get("patient_id") or header_patient_id(os.path.join(root, row["path"])) or f"row:{row['path']}"
                for _, row, _ in items]
    if official:
        splits, item_folds = [row["split"].strip() for _, row, _ in items], [-1] * len(items)
        bad = [(line, split) for (line, _, _), split in zip(items, splits) if split not in SPLITS]
        if bad:
            shown = ", ".join(f"line {line}: {split!r}" for line, split in bad[:3])
            raise Refusal(f"{csv_path}: column split must be one of {', '.join(SPLITS)}; found {shown}"
                          + (f" and {len(bad) - 3} more" if len(bad) > 3 else ""))
        if items and "train" not in splits:
            raise Refusal(f"{csv_path}: column split names no usable 'train' row; the manifest needs a training split")
    else:
        splits, item_folds = patient_split(patients, [max(e) for e in encoded], fractions, folds, seed)

    name = os.path.basename(csv_path)
    items = [
        Item(ref=f"{name}:{line}", path=os.path.join(root, row["path"]),
             label=np.eye(len(class_names))[labels].sum(0) if multi_label else labels[0],
             split=split, patient="" if patient.startswith("row:") else patient, source=row["path"], fold=fold,
             mask=os.path.join(root, row["mask"]) if isinstance(row.get("mask"), str) and row["mask"].strip() else None)
        for (line, row, _), labels, split, fold, patient in zip(items, encoded, splits, item_folds, patients)
    ]
    yield from write_items(items, out_dir, name, class_names, multi_label, channels, shard_examples, salt, strict,
                           [(f"{name}:{line}", reason) for line, reason in skipped],
                           {"folds": 0 if official else folds}, resume=resume, workers=workers,
                           encoding=encoding)
