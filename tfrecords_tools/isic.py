"""ISIC 2018 / 2019 (one-hot ground-truth CSV) and 2020 (`target` column) skin-lesion challenges.

- 2018 Task 3 / 2019: `image,MEL,NV,BCC,...` one-hot rows (every column but `image` is a class; a row
  with no class marked is skipped). 2020: `image_name,patient_id,...,target` → benign / malignant.
- Images `<images_dir>/<image>.jpg` (RGB); optional masks `<masks_dir>/<image>_segmentation.png`
  (2018 Task 1 naming) become the records' lesion masks.
- Splits: by patient when the CSV has `patient_id` (2020); else by lesion when a metadata CSV with
  `lesion_id` is given (ISIC 2019 / HAM10000 metadata: several images of one lesion never straddle
  splits); else per image. Stratified 70/20/10 with k-fold indices. Patient ids are stored only hashed;
  sex, age and site are not stored.
- An image or mask name that resolves outside its folder (`..`, a symbolic link) skips its row unless
  `allow_outside_root`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

import numpy as np

from tfrecords_tools.boundary import OUTSIDE_ROOT_HINT, outside_roots, ragged_row, read_table
from tfrecords_tools.items import Item, patient_split, write_items
from tfxmed.errors import Refusal

__all__ = ["convert_isic"]

EXTENSIONS = (".jpg", ".jpeg", ".png")


def _find(images_dir: str, stem: str) -> str | None:
    for extension in EXTENSIONS:
        path = os.path.join(images_dir, stem + extension)
        if os.path.isfile(path):
            return path
    return None


def _lesions(metadata_csv: str) -> dict[str, str]:
    """Image → lesion id from an ISIC 2019 (`image`, `lesion_id`) or HAM10000 (`image_id`, `lesion_id`) CSV."""
    columns, rows = read_table(metadata_csv)
    image = "image" if "image" in columns else "image_id"
    if image not in columns or "lesion_id" not in columns:
        raise Refusal(f"{metadata_csv}: expected columns image (or image_id) and lesion_id; found {columns}")
    return {row[image].strip(): row["lesion_id"].strip() for row in rows
            if isinstance(row[image], str) and (row["lesion_id"] or "").strip()}


def convert_isic(
    csv_path: str, images_dir: str, out_dir: str, masks_dir: str | None = None, metadata_csv: str | None = None,
    fractions: Sequence[float] = (0.7, 0.2, 0.1), folds: int = 5, seed: int = 42,
    shard_examples: int = 0, salt: str = "", strict: bool = False, resume: bool = False, workers: int = 0,
    allow_outside_root: bool = False, encoding: str = "auto",
) -> Iterator[int]:
    """Converts an ISIC ground-truth CSV and its image folder."""
    columns, rows = read_table(csv_path)
    image_column = "image_name" if "image_name" in columns else "image"
    if image_column not in columns:
        raise Refusal(f"{csv_path}: expected an 'image' (2018/2019) or 'image_name' (2020) column; found {columns}")
    binary = "target" in columns
    class_names = ["benign", "malignant"] if binary else [c for c in columns if c != image_column]
    if not class_names:
        raise Refusal(f"{csv_path}: no class columns besides '{image_column}'")
    roots = [images_dir, *([masks_dir] if masks_dir else [])]
    name = os.path.basename(csv_path)
    lesion_of = _lesions(metadata_csv) if metadata_csv else {}
    items, skipped = [], []
    for line, row in enumerate(rows, start=2):
        ref = f"{name}:{line}"
        if problem := ragged_row(row, (image_column, *(["target"] if binary else class_names))):
            skipped.append((ref, problem))
            continue
        stem = row[image_column].strip()
        try:
            if binary:
                label = int(float(row["target"]))
                if label not in (0, 1):
                    raise ValueError
            else:
                values = np.array([float(row[c] or 0) for c in class_names])
                if values.max() < 0.5:
                    skipped.append((ref, "no class marked in the one-hot columns"))
                    continue
                label = int(values.argmax())
        except ValueError:
            skipped.append((ref, "unparsable label (expected 0/1 in target or the one-hot columns)"))
            continue
        path = _find(images_dir, stem)
        if path is None:
            skipped.append((ref, f"missing file ({image_column}.jpg under the images folder)"))
            continue
        mask = os.path.join(masks_dir, f"{stem}_segmentation.png") if masks_dir else None
        if not allow_outside_root and any(outside_roots(p, roots) for p in (path, mask) if p and os.path.isfile(p)):
            skipped.append((ref, f"column {image_column}: the image or mask resolves outside its folder; "
                                 f"{OUTSIDE_ROOT_HINT}"))
            continue
        items.append(Item(ref, path, label, "", patient=(row.get("patient_id") or "").strip(), source=stem,
                          mask=mask if mask and os.path.isfile(mask) else None))
    groups = [i.patient or (f"lesion:{lesion_of[i.source]}" if i.source in lesion_of else i.source) for i in items]
    splits, item_folds = patient_split(groups, [int(i.label) for i in items], fractions, folds, seed)
    for item, split, fold in zip(items, splits, item_folds):
        item.split, item.fold = split, fold
    extra = {"folds": folds, "patient_level": any(i.patient for i in items),
             "lesion_level": bool(lesion_of) and not any(i.patient for i in items)}
    yield from write_items(items, out_dir, name, class_names, False, 3, shard_examples, salt, strict, skipped, extra,
                           resume=resume, workers=workers, encoding=encoding)
