"""The one writing loop every table-based converter shares (CSV, CheXpert, NIH ChestX-ray14, ISIC).

A converter turns its layout into `Item`s (image path, label, split, raw patient id, optional mask,
per-label weights) and hands them to `write_items`, which reads each image (Pillow, or pydicom for
`.dcm`), skips and reports bad ones in `skipped.csv` (or raises with `strict`), hashes patient ids and
paths, and writes shards + manifest. `patient_split` assigns patient-level splits and k-fold indices.

One image is written at most once, so no image can land in two splits: an item whose file is the same
file as an earlier item's (same resolved path), or holds the same bytes (same sha256), is skipped and
reported as a duplicate of the first, which is kept. Items are reported by `Item.ref` (a CSV line or a
position in a folder), never by a file name, which may carry a patient's name or MRN.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator, Sequence

import numpy as np

from tfrecords_tools.dicom import is_dicom_path, read_dicom
from tfrecords_tools.writer import DEFAULT_SHARD_BYTES, DatasetWriter, encode_example, hash_patient_id
from tfxmed.errors import Refusal
from tfxmed.storage import file_sha256

__all__ = ["Item", "write_items", "patient_split", "stratified_split", "read_image"]


@dataclasses.dataclass
class Item:
    ref: str  # how a skipped item is reported, e.g. "train.csv:12", "item 3 of folder normal/" (never a file name)
    path: str  # image file
    label: int | np.ndarray  # class index, or a multi-hot vector
    split: str
    patient: str = ""  # raw patient id: stored only as a salted hash
    source: str = ""  # relative path: stored only as a salted hash
    fold: int = -1
    # mask file, array [H, W] (non-zero = lesion), or a function of the image's (H, W) (e.g. boxes)
    mask: str | np.ndarray | Callable[[tuple[int, int]], np.ndarray] | None = None
    label_weight: np.ndarray | None = None  # per-label loss weights (e.g. 0 = uncertain, ignored)


def stratified_split(
    labels: Sequence[int], fractions: Sequence[float] = (0.7, 0.2, 0.1), seed: int = 42
) -> list[str]:
    """Assigns 'train'/'val'/'test' per item, stratified by label, deterministically."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    assignment = np.empty(len(labels), dtype=object)
    for value in np.unique(labels):
        indices = rng.permutation(np.flatnonzero(labels == value))
        bounds = np.round(np.cumsum(fractions) / np.sum(fractions) * len(indices)).astype(int)
        for name, part in zip(("train", "val", "test"), np.split(indices, bounds[:-1])):
            assignment[part] = name
    return assignment.tolist()


def read_image(path: str, channels: int) -> np.ndarray:
    """uint8 [H, W] (channels=1) or [H, W, 3] pixels of an image file, via Pillow.

    16-bit and float images (modes I;16*, I, F: common for medical PNG/TIFF exports) are min-max scaled
    to 8 bits rather than clipped (Pillow's own conversion saturates everything above 255).
    """
    from PIL import Image

    with Image.open(path) as image:
        image.load()
        if image.mode.startswith("I") or image.mode == "F":
            values = np.asarray(image, dtype=np.float64)
            low, high = float(values.min()), float(values.max())
            scaled = np.round(255.0 * (values - low) / (high - low)) if high > low else np.zeros_like(values)
            grey = scaled.astype(np.uint8)
            return grey if channels == 1 else np.repeat(grey[..., None], 3, axis=-1)
        if min(image.size) < 2:
            raise ValueError(f"image is {image.size[0]}×{image.size[1]} px: too small to be an image")
        return np.asarray(image.convert("L" if channels == 1 else "RGB"), dtype=np.uint8)


def patient_split(
    patients: Sequence[str], labels: Sequence[int], fractions: Sequence[float] = (0.7, 0.2, 0.1),
    folds: int = 5, seed: int = 42,
) -> tuple[list[str], list[int]]:
    """(split, fold) per item, assigned per patient and stratified by the patient's highest label."""
    patient_label: dict[str, int] = {}
    for patient, label in zip(patients, labels):
        patient_label[patient] = max(patient_label.get(patient, label), label)
    names = sorted(patient_label)
    patient_labels = [patient_label[name] for name in names]
    splits = dict(zip(names, stratified_split(patient_labels, fractions, seed)))
    rng = np.random.default_rng(seed + 1)
    fold_of: dict[str, int] = {}
    for value in sorted(set(patient_labels)):
        group = [name for name in names if patient_label[name] == value]
        for position, index in enumerate(rng.permutation(len(group))):
            fold_of[group[index]] = position % folds
    return [splits[p] for p in patients], [fold_of[p] for p in patients]


def _read(path: str, channels: int) -> np.ndarray:
    if is_dicom_path(path):
        image = read_dicom(path)[0]
        return np.repeat(image[..., None], 3, axis=-1) if channels == 3 else image
    return read_image(path, channels)


def _scrub(message: str, *paths) -> str:
    """`message` without the paths (or file names) it may quote: they may carry identifiers."""
    for path in paths:
        if isinstance(path, str) and path:
            name, resolved = os.path.basename(path), os.path.abspath(path)
            for form in (path, resolved, *([name] if "." in name and len(name) > 4 else [])):
                message = message.replace(form, "file")
    return message


def _encode_item(task) -> tuple:
    """("ok", record, stats, sha256) or ("skip", reason) for one item: reading, checking, encoding (any process)."""
    item, channels, num_classes, multi_label, salt, encoding = task
    try:
        if not os.path.isfile(item.path):  # e.g. a FIFO, a folder, or a file deleted since it was listed
            return "skip", "missing file or not a regular file"
        digest = file_sha256(item.path)
        image = _read(item.path, channels)
        mask = item.mask
        if isinstance(mask, str):
            mask = read_image(mask, 1)
        elif callable(mask):
            mask = mask(image.shape[:2])
        if mask is not None and np.shape(mask)[:2] != image.shape[:2]:
            raise ValueError(f"mask {np.shape(mask)[:2]} does not match image {image.shape[:2]}")
    except ValueError as error:  # refused DICOM or mismatched mask: say why, without the path
        return "skip", _scrub(str(error), item.path, item.mask)
    except Exception as error:  # Pillow and pydicom raise many types for bad files
        return "skip", f"unreadable image or mask: {type(error).__name__}"
    try:
        record, stats = encode_example(
            image, item.label, num_classes, multi_label, channels, item.split, mask,
            hash_patient_id(item.patient, salt), hash_patient_id(item.source, salt) if item.source else "",
            item.label_weight, item.fold, encoding=encoding)
    except ValueError as error:  # e.g. a label out of range: this item only, not the whole run
        return "skip", _scrub(str(error), item.path, item.mask)
    return "ok", record, stats, digest


def _describe_mask(mask) -> object:
    if mask is None or isinstance(mask, str):
        return mask
    if isinstance(mask, np.ndarray):
        return hashlib.sha256(mask.tobytes()).hexdigest()
    return [type(mask).__name__, repr(sorted(vars(mask).items()))]


def _fingerprint(items: Sequence[Item], name: str, skipped, extra) -> str:
    """A digest of everything that decides the records: items in order, labels, masks, options."""
    digest = hashlib.sha256(json.dumps([name, skipped, extra], sort_keys=True, default=str).encode())
    for item in items:
        digest.update(json.dumps([
            item.ref, item.path, item.split, item.source, item.fold, np.asarray(item.label).tolist(),
            None if item.label_weight is None else np.asarray(item.label_weight).tolist(),
            _describe_mask(item.mask), bool(item.patient),
        ], default=str).encode())
    return digest.hexdigest()


def write_items(
    items: Iterable[Item],
    out_dir: str,
    dataset_name: str,
    class_names: Sequence[str],
    multi_label: bool = False,
    channels: int = 1,
    shard_examples: int = 0,
    salt: str = "",
    strict: bool = False,
    skipped: Sequence[tuple[str, str]] = (),
    extra: dict | None = None,
    resume: bool = False,
    workers: int = 0,
    shard_bytes: int = DEFAULT_SHARD_BYTES,
    encoding: str = "auto",
) -> Iterator[int]:
    """Writes `items`, yielding once per item; `skipped` carries rows the converter already refused.

    `resume` continues an interrupted conversion (items in finished shards are not read again);
    `workers` > 0 reads and encodes in that many processes (results are written in item order, so the
    shards are the same as with `workers=0`); `encoding` is how images are stored (`DatasetWriter`).
    """
    skipped = list(skipped)
    if strict and skipped:
        raise Refusal(f"{skipped[0][0]}: {skipped[0][1]}")
    items = list(items)
    with DatasetWriter(out_dir, dataset_name, class_names, multi_label=multi_label, channels=channels,
                       shard_bytes=shard_bytes, shard_examples=shard_examples, salt=salt, resume=resume,
                       fingerprint=_fingerprint(items, dataset_name, skipped, extra), encoding=encoding) as writer:
        for ref, reason in skipped:
            writer.note_skipped(ref, reason)
        covered = [writer.take_covered(item.split) for item in items]
        pending = [item for item, done in zip(items, covered) if not done]
        written = _Written({ref for ref, _ in writer.skipped})
        tasks = ((item, channels, len(class_names), multi_label, writer.salt, encoding) for item in pending)
        pool = multiprocessing.get_context("spawn").Pool(workers) if workers > 0 else None
        try:
            results = pool.imap(_encode_item, tasks, chunksize=16) if pool else map(_encode_item, tasks)
            for item, done in zip(items, covered):
                if done:  # in a finished shard of an interrupted run: its duplicates must still be found
                    written.add_covered(item)
                    yield 1
                    continue
                result = next(results)
                if result[0] == "ok":
                    result = written.check(item, result[3]) or result
                if result[0] == "ok":
                    writer.add_encoded(item.split, result[1], result[2])
                elif strict:
                    raise Refusal(f"{item.ref}: {result[1]}")
                else:
                    writer.skip(item.split, item.ref, result[1])
                yield 1
        finally:
            if pool:
                pool.terminate()
        writer.close(extra)


class _Written:
    """The files and image bytes written so far, so that a second listing of one image is refused."""

    def __init__(self, skipped_refs: set[str]):
        self.skipped_refs = skipped_refs  # items of resumed shards that were not written
        self.by_path: dict[str, str] = {}
        self.by_content: dict[str, str] = {}

    def _register(self, item: Item, digest: str) -> None:
        self.by_path.setdefault(os.path.realpath(item.path), item.ref)
        self.by_content.setdefault(digest, item.ref)

    def add_covered(self, item: Item) -> None:
        if item.ref not in self.skipped_refs:
            try:
                self._register(item, file_sha256(item.path))
            except (OSError, ValueError):  # gone since: nothing later can duplicate what cannot be read
                pass

    def check(self, item: Item, digest: str) -> tuple[str, str] | None:
        """("skip", reason) when `item` repeats a written image; else registers it and returns None."""
        first = self.by_path.get(os.path.realpath(item.path))
        how = "the same file"
        if first is None:
            first, how = self.by_content.get(digest), "identical image bytes"
        if first is not None:
            return "skip", f"duplicate of {first} ({how}): an image is written once, so it cannot land in two splits"
        self._register(item, digest)
        return None
