"""MedMNIST `.npz` files (2-D, official train/val/test splits), checked whole before anything is written.

A file is refused (`Refusal`, naming the file, the array and what was expected) when:
- it is not a readable `.npz`, or a split's `<split>_images` or `<split>_labels` is missing;
- images are not [N, H, W] or [N, H, W, C] with C = 1 or 3 and H, W ≥ 2, the splits differ in C, they
  are not numbers (bool, complex, strings), or they hold NaN or ±inf; or the training split is empty;
- a split holds a different number of images and labels;
- labels are not [N] or [N, 1] (single-label) or [N, K] (multi-label, values 0 or 1, the same K in
  every split), are negative, NaN or not whole numbers;
- a label is beyond a known MedMNIST dataset's class count (e.g. 9 in `pathmnist`, which has 0–8), or a
  validation or test label is a class the training split never has (single-label files).

Pixels are converted to uint8 by one explicit rule for the whole file, recorded in the manifest as
`pixel_conversion` (nothing wraps around or saturates silently):
- integer images whose values all lie in [0, 255] (uint8 included) are kept as they are;
- float images whose values all lie in [0, 1] are multiplied by 255 and rounded;
- float images holding whole numbers in [0, 255] are kept as they are;
- anything else (uint16, int32 beyond 255, floats beyond [0, 1]) is mapped linearly from the file's
  minimum and maximum (over all three splits, so intensities stay comparable between images and
  splits) onto [0, 255] and rounded.
"""

from __future__ import annotations

import os
import zipfile
import zlib
from collections.abc import Callable, Iterator

import numpy as np

from tfrecords_tools.writer import DatasetWriter
from tfxmed.errors import Refusal
from tfxmed.storage import file_sha256

__all__ = ["convert_medmnist", "medmnist_size", "MEDMNIST_SPLITS", "KNOWN_MEDMNIST_CLASSES",
           "MEDMNIST_CLASS_COUNTS"]

MEDMNIST_SPLITS = ("train", "val", "test")
KNOWN_MEDMNIST_CLASSES = {
    "pneumoniamnist": ["normal", "pneumonia"],
    "breastmnist": ["malignant", "normal_or_benign"],
    "chestmnist": [
        "atelectasis", "cardiomegaly", "effusion", "infiltration", "mass", "nodule", "pneumonia",
        "pneumothorax", "consolidation", "edema", "emphysema", "fibrosis", "pleural", "hernia",
    ],
}
# MedMNIST v2 (Yang et al., 2023), 2-D datasets: classes per file; ChestMNIST is the multi-label one.
MEDMNIST_CLASS_COUNTS = {
    "pathmnist": 9, "chestmnist": 14, "dermamnist": 7, "octmnist": 4, "pneumoniamnist": 2, "retinamnist": 5,
    "breastmnist": 2, "bloodmnist": 8, "tissuemnist": 8, "organamnist": 11, "organcmnist": 11, "organsmnist": 11,
}
MULTI_LABEL_MEDMNIST = ("chestmnist",)


def _stem(path: str) -> str:
    """`pneumoniamnist_224.npz` → `pneumoniamnist`."""
    return os.path.basename(path).split(".")[0].split("_")[0].lower()


def _load(path: str, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file (expected a MedMNIST .npz)")
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise Refusal(f"{path}: a single .npy array, not a MedMNIST .npz archive of {', '.join(keys[:2])}, ...")
        with loaded as archive:
            missing = [key for key in keys if key not in archive]
            if missing:
                raise Refusal(f"{path}: not a MedMNIST file, missing keys {missing}")
            return {key: archive[key] for key in keys}
    except (ValueError, EOFError, zipfile.BadZipFile, zlib.error, OSError) as error:
        if isinstance(error, Refusal):
            raise
        raise Refusal(f"{path}: not a readable .npz archive ({type(error).__name__}: {error})") from None


def _check_images(path: str, arrays: dict[str, np.ndarray]) -> int:
    """The channel count, after refusing images of the wrong type, rank, size or with NaN/inf."""
    channels = None
    for split in MEDMNIST_SPLITS:
        name, images = f"{split}_images", arrays[f"{split}_images"]
        if images.dtype.kind not in "uif":
            raise Refusal(f"{path}: {name} has dtype {images.dtype}; expected uint8, another integer type or float")
        if images.ndim == 4 and images.shape[-1] in (1, 3):
            count = images.shape[-1]
        elif images.ndim == 3:
            count = 1
        else:
            raise Refusal(f"{path}: {name} has shape {images.shape}; expected [N, H, W] or [N, H, W, C] with C 1 or 3")
        if min(images.shape[1:3]) < 2:
            raise Refusal(f"{path}: {name} holds {images.shape[1]}×{images.shape[2]}-px images; expected at least 2×2")
        if channels is not None and count != channels:
            raise Refusal(f"{path}: {name} has {count} channel(s) but train_images {channels}; expected the same")
        channels = count
        if images.dtype.kind == "f" and images.size:
            bad = ~np.isfinite(images).reshape(len(images), -1).all(axis=1)
            if bad.any():
                raise Refusal(f"{path}: {name} holds NaN or infinite pixels in {int(bad.sum())} image(s) (the first "
                              f"is image {int(np.argmax(bad))}); expected finite pixels")
    if len(arrays["train_images"]) == 0:
        raise Refusal(f"{path}: train_images holds no images; the manifest needs a training split")
    return channels


def _check_labels(path: str, arrays: dict[str, np.ndarray]) -> tuple[bool, int]:
    """(multi_label, number of classes), after refusing labels that do not fit the images or the classes."""
    stem, widths = _stem(path), {}
    for split in MEDMNIST_SPLITS:
        name, labels, count = f"{split}_labels", arrays[f"{split}_labels"], len(arrays[f"{split}_images"])
        if len(labels) != count:
            raise Refusal(f"{path}: {split}_images holds {count} images but {name} {len(labels)} labels; "
                          "expected one label (row) per image")
        if labels.dtype.kind not in "biuf":
            raise Refusal(f"{path}: {name} has dtype {labels.dtype}; expected integer class indices")
        if labels.ndim == 1 or (labels.ndim == 2 and labels.shape[1] >= 1):
            widths[split] = 1 if labels.ndim == 1 else labels.shape[1]
        else:
            raise Refusal(f"{path}: {name} has shape {labels.shape}; expected [N] or [N, 1] class indices, "
                          "or [N, K] multi-label 0/1 columns")
        values = labels.astype(np.float64)
        if labels.size and not (np.isfinite(values).all() and (values == np.round(values)).all()):
            raise Refusal(f"{path}: {name} holds NaN, infinite or fractional labels; expected whole numbers")
        if labels.size and values.min() < 0:
            raise Refusal(f"{path}: {name} holds the negative label {int(values.min())}; expected 0 or more")
    if len(set(widths.values())) > 1:
        raise Refusal(f"{path}: the label arrays have {widths} columns; expected the same in every split")
    multi_label = widths["train"] > 1
    known = MEDMNIST_CLASS_COUNTS.get(stem)
    if known and multi_label != (stem in MULTI_LABEL_MEDMNIST):
        expected = f"[N, {known}] 0/1 columns" if stem in MULTI_LABEL_MEDMNIST else "[N] or [N, 1] class indices"
        raise Refusal(f"{path}: {stem} labels are {expected}; train_labels has shape {arrays['train_labels'].shape}")
    if multi_label:
        for split in MEDMNIST_SPLITS:
            if not np.isin(arrays[f"{split}_labels"], (0, 1)).all():
                raise Refusal(f"{path}: {split}_labels holds values other than 0 and 1; expected multi-label 0/1")
        if known and widths["train"] != known:
            raise Refusal(f"{path}: {stem} has {known} classes; the label arrays have {widths['train']} columns")
        return True, widths["train"]
    train = np.unique(arrays["train_labels"].astype(np.int64))
    classes = known or int(train.max()) + 1
    for split in MEDMNIST_SPLITS:
        labels = arrays[f"{split}_labels"].reshape(-1).astype(np.int64)
        beyond = np.flatnonzero(labels >= classes)
        if beyond.size:
            where = f"{stem} has {known} classes (0–{known - 1})" if known else \
                f"the classes run 0–{classes - 1} (train_labels' largest is {classes - 1})"
            raise Refusal(f"{path}: {split}_labels holds label {labels[beyond[0]]} (image {beyond[0]}); {where}")
        unseen = np.flatnonzero(~np.isin(labels, train))
        if split != "train" and unseen.size:
            raise Refusal(f"{path}: {split}_labels holds label {labels[unseen[0]]} (image {unseen[0]}), a class "
                          f"train_labels never has ({', '.join(map(str, train))}): a model could never learn it")
    return False, classes


def _pixel_rule(arrays: dict[str, np.ndarray]) -> tuple[Callable[[np.ndarray], np.ndarray], str]:
    """(image → uint8 image, description) for the whole file: see the module docstring."""
    images = [arrays[f"{split}_images"] for split in MEDMNIST_SPLITS if arrays[f"{split}_images"].size]
    dtypes = ", ".join(sorted({str(a.dtype) for a in images}))
    low, high = min(float(a.min()) for a in images), max(float(a.max()) for a in images)
    floats = any(a.dtype.kind == "f" for a in images)
    whole = all(a.dtype.kind in "iu" or bool((a == np.round(a)).all()) for a in images)
    if floats and low >= 0 and high <= 1:
        return lambda image: np.round(image.astype(np.float64) * 255).astype(np.uint8), \
            f"{dtypes} in [0, 1] multiplied by 255, rounded"
    if whole and low >= 0 and high <= 255:
        return lambda image: image.astype(np.uint8), f"{dtypes} in [0, 255] kept as stored"
    scale = 255.0 / (high - low) if high > low else 0.0
    return lambda image: np.round((image.astype(np.float64) - low) * scale).astype(np.uint8), \
        f"{dtypes} in [{low:g}, {high:g}] mapped linearly onto [0, 255], rounded (one map for the whole file)"


def _class_names(path: str, count: int) -> list[str]:
    known = KNOWN_MEDMNIST_CLASSES.get(_stem(path))
    return known if known and len(known) == count else [f"class_{i}" for i in range(count)]


def medmnist_size(path: str) -> int:
    """Number of images over the official splits of a MedMNIST `.npz` (reads only the label arrays).

    0 for a file that is not a readable `.npz`: `convert_medmnist` then refuses it with the reason.
    """
    try:
        with np.load(path, allow_pickle=False) as archive:
            return sum(len(archive[f"{s}_labels"]) for s in MEDMNIST_SPLITS if f"{s}_labels" in archive)
    except (ValueError, TypeError, AttributeError, EOFError, zipfile.BadZipFile, zlib.error, OSError):
        return 0


def convert_medmnist(
    path: str, out_dir: str, shard_examples: int = 0, salt: str = "", resume: bool = False, encoding: str = "auto",
) -> Iterator[int]:
    """Converts a 2-D MedMNIST `.npz` keeping its official train/val/test split; yields once per image.

    Binary and multi-class files have labels [N] or [N, 1]; multi-label ones (e.g. ChestMNIST) [N, K].
    The whole file is checked first (see the module docstring): a bad file is refused before anything
    is written.
    """
    arrays = _load(path, tuple(f"{s}_{k}" for s in MEDMNIST_SPLITS for k in ("images", "labels")))
    channels = _check_images(path, arrays)
    multi_label, classes = _check_labels(path, arrays)
    to_uint8, conversion = _pixel_rule(arrays)
    with DatasetWriter(out_dir, dataset_name=os.path.basename(path), class_names=_class_names(path, classes),
                       multi_label=multi_label, channels=channels, shard_examples=shard_examples, salt=salt,
                       resume=resume, fingerprint=file_sha256(path), encoding=encoding) as writer:
        for split in MEDMNIST_SPLITS:
            images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
            for i in range(len(images)):
                image = to_uint8(images[i] if images[i].ndim == 3 else images[i][..., None])
                label = labels[i].astype(np.float32) if multi_label else int(np.asarray(labels[i]).reshape(-1)[0])
                writer.add(split, image, label, source_id=f"{split}/{i}")
                yield 1
        writer.close({"pixel_conversion": conversion})
