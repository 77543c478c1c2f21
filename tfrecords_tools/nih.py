"""NIH ChestX-ray14: `Data_Entry_2017.csv`, the official split lists and `BBox_List_2017.csv`.

- Labels: `Finding Labels` split on `|` into the 14 findings (multi-label); `No Finding` is all zeros;
  an unknown finding skips the row with its name in `skipped.csv`.
- Splits: `test_list.txt` is the test split; `train_val_list.txt` patients are split into train/val
  (patient level, stratified on any finding) with k-fold indices. Without the lists: 70/20/10 by patient.
- Boxes: every `BBox_List_2017.csv` box of an image (given in the 1024 × 1024 grid of the released
  PNGs, not in `OriginalImage[Width, Height]`) is scaled to the file's size and painted into the
  image's lesion mask (so downsized copies of the images work too).
- Images are found by file name anywhere under the root (`images/`, `images_001/images/`, ...).
- `Patient ID` is stored only hashed; age, sex and view are not stored.
- An image found under the root that is a symbolic link to a file outside it skips its row unless
  `allow_outside_root`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np

from tfrecords_tools.boundary import OUTSIDE_ROOT_HINT, outside_roots, ragged_row, read_table
from tfrecords_tools.items import Item, patient_split, write_items
from tfxmed.errors import Refusal

__all__ = ["convert_nih", "FINDINGS"]

FINDINGS = (
    "Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule", "Pneumonia", "Pneumothorax",
    "Consolidation", "Edema", "Emphysema", "Fibrosis", "Pleural_Thickening", "Hernia",
)
ENTRIES = "Data_Entry_2017.csv"
BOX_GRID = 1024.0  # BBox_List_2017.csv coordinates are pixels of the released 1024 × 1024 PNGs


def _read_list(path: str) -> set[str] | None:
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as stream:
        return {line.strip() for line in stream if line.strip()}


def _boxes(root: str) -> dict[str, list[tuple[float, float, float, float]]]:
    """Image name → boxes (x, y, w, h); the CSV's box columns are `Bbox [x`, `y`, `w`, `h]`."""
    path = os.path.join(root, "BBox_List_2017.csv")
    boxes: dict[str, list] = {}
    if not os.path.exists(path):
        return boxes
    columns, rows = read_table(path)
    column = {name.strip(): name for name in columns}
    keys = ("Image Index", "Bbox [x", "y", "w", "h]")
    missing = [key for key in keys if key not in column]
    if missing:
        raise Refusal(f"{path}: missing column(s) {missing}")
    for line, row in enumerate(rows, start=2):
        try:
            box = tuple(float(row[column[key]]) for key in keys[1:])
            if not np.isfinite(box).all():
                raise ValueError
        except (TypeError, ValueError):
            raise Refusal(f"{path}:{line}: expected four finite numbers in Bbox [x, y, w, h]") from None
        boxes.setdefault(row[column["Image Index"]].strip(), []).append(box)
    return boxes


class _BoxMask:
    """A mask function of the image's (H, W): the boxes scaled from the 1024-px grid and painted in.

    A class rather than a closure so items can travel to worker processes (pickling).
    """

    def __init__(self, boxes, grid: tuple[float, float] = (BOX_GRID, BOX_GRID)):
        self.boxes, self.original = boxes, grid

    def __call__(self, shape: tuple[int, int]) -> np.ndarray:
        mask = np.zeros(shape, np.uint8)
        scale_x, scale_y = shape[1] / self.original[0], shape[0] / self.original[1]
        for x, y, w, h in self.boxes:
            left, top = int(np.floor(x * scale_x)), int(np.floor(y * scale_y))
            right, bottom = int(np.ceil((x + w) * scale_x)), int(np.ceil((y + h) * scale_y))
            mask[max(top, 0):bottom, max(left, 0):right] = 255
        return mask


def convert_nih(
    root: str, out_dir: str, val_fraction: float = 0.125, folds: int = 5, seed: int = 42,
    shard_examples: int = 0, salt: str = "", strict: bool = False, resume: bool = False, workers: int = 0,
    allow_outside_root: bool = False, encoding: str = "auto",
) -> Iterator[int]:
    """Converts an NIH ChestX-ray14 folder (holding `Data_Entry_2017.csv`)."""
    entries = os.path.join(root, ENTRIES)
    if not os.path.exists(entries):
        raise FileNotFoundError(f"{entries} not found: expected the ChestX-ray14 folder holding {ENTRIES}")
    files = {}
    for folder, directories, names in os.walk(root):
        directories.sort()  # the same file wins on every machine when a name appears twice
        for name in sorted(names):
            if name.lower().endswith(".png"):
                files.setdefault(name, os.path.join(folder, name))
    test_list = _read_list(os.path.join(root, "test_list.txt"))
    train_list = _read_list(os.path.join(root, "train_val_list.txt"))
    boxes = _boxes(root)
    index = {name: i for i, name in enumerate(FINDINGS)}
    items, skipped = [], []
    columns, rows = read_table(entries)
    required = ("Image Index", "Finding Labels", "Patient ID")
    missing = [c for c in required if c not in columns]
    if missing:
        raise Refusal(f"{entries}: missing column(s) {missing}")
    for line, row in enumerate(rows, start=2):
        ref = f"{ENTRIES}:{line}"
        if problem := ragged_row(row, required):
            skipped.append((ref, problem))
            continue
        name = row["Image Index"].strip()
        findings = [f.strip() for f in row["Finding Labels"].split("|") if f.strip() and f.strip() != "No Finding"]
        unknown = [f for f in findings if f not in index]
        if unknown or not row["Finding Labels"].strip():
            skipped.append((ref, f"column Finding Labels: unknown finding(s) {unknown}" if unknown
                            else "empty label"))
            continue
        if name not in files:
            skipped.append((ref, "missing file (column Image Index)"))
            continue
        if not allow_outside_root and outside_roots(files[name], [root]):
            skipped.append((ref, f"column Image Index: a symbolic link to a file outside the root; "
                                 f"{OUTSIDE_ROOT_HINT}"))
            continue
        if test_list is not None and name in test_list:
            split = "test"
        elif train_list is not None and name not in train_list:
            skipped.append((ref, "in neither train_val_list.txt nor test_list.txt"))
            continue
        else:
            split = "train"
        label = np.zeros(len(FINDINGS), np.float32)
        label[[index[f] for f in findings]] = 1.0
        mask = None
        if name in boxes:
            mask = _BoxMask(boxes[name])
        items.append(Item(ref, files[name], label, split, patient=row["Patient ID"].strip(), source=name,
                          mask=mask))
    pool = [item for item in items if item.split == "train"]
    fractions = (1.0 - val_fraction, val_fraction, 0.0) if test_list is not None else (0.7, 0.2, 0.1)
    splits, item_folds = patient_split([i.patient or i.source for i in pool], [int(i.label.any()) for i in pool],
                                       fractions, folds, seed)
    for item, split, fold in zip(pool, splits, item_folds):
        item.split, item.fold = split, fold
    extra = {"official_split": test_list is not None, "folds": folds,
             "with_boxes": sum(i.mask is not None for i in items)}
    yield from write_items(items, out_dir, "chestxray14", FINDINGS, True, 1, shard_examples, salt, strict, skipped,
                           extra, resume=resume, workers=workers, encoding=encoding)
