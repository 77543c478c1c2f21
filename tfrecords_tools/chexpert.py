"""CheXpert (`train.csv` / `valid.csv` with a `Path` column and 14 observations in {1, 0, −1, blank}).

Uncertainty policies (Irvin et al., 2019):
- `ones` (U-Ones): −1 → 1;  `zeros` (U-Zeros): −1 → 0;
- `ignore` (U-Ignore): −1 → 0 with that label's weight 0 in the record (`label_weight`), so the
  training loss and the metrics can skip it;
- `multiclass` (U-MultiClass): every observation becomes three outputs `<name>:negative|positive|uncertain`
  (exactly one set per observation; the manifest's `label_groups` says which outputs belong together).
Blank means not mentioned and counts as negative. `frontal_only` keeps `Frontal/Lateral == Frontal`.
Splits: `valid.csv` is the test split (the official test labels are not public); `train.csv` patients
are split into train/val (patient level, stratified on any finding) with k-fold indices. The patient id
comes from the path (`patientNNNNN`) and is stored only hashed; sex and age are not stored.
A `Path` that resolves outside `root` (`..`, an absolute path, a symbolic link) skips its row unless
`allow_outside_root`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

import numpy as np

from tfrecords_tools.boundary import OUTSIDE_ROOT_HINT, outside_roots, ragged_row, read_table
from tfrecords_tools.items import Item, patient_split, write_items
from tfxmed.errors import Refusal

__all__ = ["convert_chexpert", "OBSERVATIONS", "POLICIES"]

OBSERVATIONS = (
    "No Finding", "Enlarged Cardiomediastinum", "Cardiomegaly", "Lung Opacity", "Lung Lesion", "Edema",
    "Consolidation", "Pneumonia", "Atelectasis", "Pneumothorax", "Pleural Effusion", "Pleural Other", "Fracture",
    "Support Devices",
)
POLICIES = ("ones", "zeros", "ignore", "multiclass")
STATES = ("negative", "positive", "uncertain")
_PATIENT = re.compile(r"(patient\d+)")


def _value(raw: str, column: str) -> int:
    raw = (raw or "").strip()
    if raw == "":
        return 0
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"column {column}: unparsable label (expected 1, 0, -1 or blank)") from None
    if value not in (1.0, 0.0, -1.0):  # the cell's text is not echoed: a shifted row may hold a name there
        raise ValueError(f"column {column}: label is not 1, 0, -1 or blank")
    return int(value)


def _encode(values: list[int], policy: str) -> tuple[np.ndarray, np.ndarray | None]:
    values = np.array(values)
    if policy == "multiclass":
        return np.eye(3, dtype=np.float32)[np.where(values == -1, 2, values)].reshape(-1), None
    uncertain = values == -1
    label = np.where(uncertain, 1 if policy == "ones" else 0, values).astype(np.float32)
    return label, ((~uncertain).astype(np.float32) if policy == "ignore" else None)


def _image_path(root: str, path: str) -> str:
    """`Path` is relative to the folder holding the dataset folder (`CheXpert-v1.0-small/train/...`)."""
    beside = os.path.join(os.path.dirname(os.path.abspath(root)), path)
    if os.path.exists(beside):
        return beside
    parts = path.replace("\\", "/").split("/")
    return os.path.join(root, *parts[1:]) if len(parts) > 1 else os.path.join(root, path)


def convert_chexpert(
    root: str, out_dir: str, policy: str = "ones", frontal_only: bool = True, val_fraction: float = 0.1,
    folds: int = 5, seed: int = 42, shard_examples: int = 0, salt: str = "", strict: bool = False,
    resume: bool = False, workers: int = 0, allow_outside_root: bool = False, encoding: str = "auto",
) -> Iterator[int]:
    """Converts a CheXpert folder (holding `train.csv` and `valid.csv`)."""
    if policy not in POLICIES:
        raise Refusal(f"--policy must be one of {', '.join(POLICIES)}; got '{policy}'")
    items, skipped, filtered = [], [], 0
    for file_name, split in (("train.csv", "train"), ("valid.csv", "test")):
        csv_path = os.path.join(root, file_name)
        if not os.path.exists(csv_path):
            raise FileNotFoundError(
                f"{csv_path} not found: expected the CheXpert folder holding train.csv and valid.csv")
        columns, rows = read_table(csv_path)
        missing = [c for c in ("Path", *OBSERVATIONS) if c not in columns]
        if missing:
            raise Refusal(f"{csv_path}: missing column(s) {missing}")
        for line, row in enumerate(rows, start=2):
            ref = f"{file_name}:{line}"
            if problem := ragged_row(row, "*"):
                skipped.append((ref, problem))
                continue
            if frontal_only and (row.get("Frontal/Lateral") or "Frontal").strip() != "Frontal":
                filtered += 1
                continue
            try:
                values = [_value(row[name], name) for name in OBSERVATIONS]
            except ValueError as error:
                skipped.append((ref, str(error)))
                continue
            if not isinstance(row.get("Path"), str) or not row["Path"].strip():
                skipped.append((ref, "column Path: empty (expected the image path)"))
                continue
            path = _image_path(root, row["Path"])
            if not allow_outside_root and outside_roots(path, [root]):
                skipped.append((ref, f"column Path: resolves outside the CheXpert folder; {OUTSIDE_ROOT_HINT}"))
                continue
            if not os.path.isfile(path):
                skipped.append((ref, "missing file (column Path)"))
                continue
            label, weight = _encode(values, policy)
            match = _PATIENT.search(row["Path"])
            items.append(Item(ref, path, label, split, patient=match.group(1) if match else "", source=row["Path"],
                              label_weight=weight))
    train = [item for item in items if item.split == "train"]
    splits, item_folds = patient_split([i.patient or i.source for i in train],
                                       [int(_any_finding(i.label, policy)) for i in train],
                                       (1.0 - val_fraction, val_fraction, 0.0), folds, seed)
    for item, split, fold in zip(train, splits, item_folds):
        item.split, item.fold = split, fold
    names = [f"{n}:{s}" for n in OBSERVATIONS for s in STATES] if policy == "multiclass" else list(OBSERVATIONS)
    groups = [[3 * i, 3 * i + 1, 3 * i + 2] for i in range(len(OBSERVATIONS))] if policy == "multiclass" else None
    extra = {"uncertainty_policy": policy, "frontal_only": frontal_only, "filtered_lateral": filtered, "folds": folds,
             "label_groups": groups}
    yield from write_items(items, out_dir, "chexpert", names, True, 1, shard_examples, salt, strict, skipped, extra,
                           resume=resume, workers=workers, encoding=encoding)


def _any_finding(label: np.ndarray, policy: str) -> bool:
    """Whether an encoded label has any finding (for stratification; 'No Finding' is column 0)."""
    if policy == "multiclass":
        return bool(label.reshape(-1, 3)[1:, 1].any())
    return bool(label[1:].any())
