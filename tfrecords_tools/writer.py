"""Sharded, atomic, resumable TFRecord writing with a manifest (counts, shard checksums, training μ/σ).

Every converter feeds `DatasetWriter.add` (or `add_encoded` with records made by `encode_example`,
e.g. in worker processes). Shards are written to a temporary name and renamed when complete, so a
killed conversion never leaves a half-written shard under a final name. Shards hold a fixed number of
examples per split (`shard_examples`, or derived once from the first records' size and `shard_bytes`,
≈100 MB by default), so a given example always lands in the same shard. After each shard the writer
journals it (`.progress.json`: file, sha256, how many items it covers, its statistics and skipped
items, plus a fingerprint of the inputs and options and a check value of the salt);
a writer opened with `resume=True` re-verifies those shards and lets the converter skip the items they
cover, and the finished dataset is byte-identical to an uninterrupted run (the manifest differs only
in its `created` time).

The writer claims its folder (`boundary.claim_output`): a folder tfxmed did not write is refused, and
`out_dir/.lock` keeps a second conversion out until `close()` (or leaving a `with DatasetWriter(...)`
block) releases it.
"""

from __future__ import annotations

import contextlib
import csv
import datetime
import errno
import hashlib
import hmac
import io
import json
import os
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from tfrecords_tools.boundary import claim_output
from tfxmed.data import features
from tfxmed.errors import Refusal
from tfxmed.storage import (
    MANIFEST_NAME,
    atomic_path,
    exists,
    file_sha256,
    open_file,
    remove,
    write_json_atomic,
    write_text_atomic,
)

__all__ = ["DatasetWriter", "encode_example", "hash_patient_id"]

JOURNAL_NAME = ".progress.json"
DEFAULT_SHARD_BYTES = 100 * 1024 * 1024
PROBE_RECORDS = 32  # records whose mean size fixes a split's examples per shard


def hash_patient_id(patient_id: str, salt: str) -> str:
    """A salted HMAC-SHA256 of a patient id (hex, 32 chars); the raw id is never stored."""
    if not patient_id:
        return ""
    return hmac.new(salt.encode(), patient_id.encode(), hashlib.sha256).hexdigest()[:32]


def encode_example(
    image: np.ndarray,
    label,
    num_classes: int,
    multi_label: bool,
    channels: int,
    split: str,
    mask: np.ndarray | None = None,
    patient_hash: str = "",
    source_id: str = "",
    label_weight=None,
    fold: int = -1,
    synthetic: bool = False,
    confounder: np.ndarray | None = None,
    encoding: str = "png",
) -> tuple[bytes, dict]:
    """(tf.Example bytes, statistics) of one example; a pure function, safe to run in worker processes.

    `encoding` is how the image and masks are stored (`tfxmed.data.features.ENCODINGS`)."""
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[..., None]
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != channels:
        raise ValueError(
            f"image for '{source_id or split}' must be uint8 [H, W, {channels}], got {image.dtype} {image.shape}")
    if multi_label:
        vector = np.asarray(label, dtype=np.float32).reshape(-1)
        if vector.shape != (num_classes,):
            raise ValueError(f"label for '{source_id}' must have {num_classes} entries, got {vector.shape}")
        index = -1
    else:
        index = int(label)
        if not 0 <= index < num_classes:
            raise ValueError(f"label for '{source_id}' must be in [0, {num_classes}), got {label}")
        vector = np.eye(num_classes, dtype=np.float32)[index]
    mask = _binary_mask(mask, image, "mask", source_id)
    confounder = _binary_mask(confounder, image, "confounder mask", source_id)
    record = features.serialize(features.RecordFields(
        image=image, label_vector=vector, label_index=index, mask=mask, confounder=confounder,
        label_weight=None if label_weight is None else np.asarray(label_weight, np.float32),
        patient_hash=patient_hash, source_id=source_id, split=split, fold=fold, synthetic=synthetic,
        encoding=encoding,
    ))
    # The example's statistics in the shape of a total (see `_merge`); only real training pixels count.
    stats = {**_empty_stats(num_classes, channels), "count": 1,
             "class_counts": (vector > 0.5).astype(np.int64).tolist(), "with_mask": int(mask is not None)}
    if split == "train" and not synthetic:
        pixels = image.reshape(-1, channels).astype(np.float64) / 255.0
        stats.update(pixel_sum=pixels.sum(axis=0).tolist(), pixel_sum_squares=(pixels**2).sum(axis=0).tolist(),
                     pixel_count=int(pixels.shape[0]))
    return record, stats


def _write_shard(path: str, records: list[bytes]) -> None:
    """Writes `records` to `path` atomically; TensorFlow's I/O errors become `OSError`s with their errno."""
    try:
        with atomic_path(path) as temporary, tf.io.TFRecordWriter(temporary) as writer:
            for record in records:
                writer.write(record)
    except tf.errors.OpError as error:
        full = isinstance(error, tf.errors.ResourceExhaustedError) or "No space left" in error.message
        code = errno.ENOSPC if full else errno.EACCES if isinstance(error, tf.errors.PermissionDeniedError) else \
            errno.EIO
        raise OSError(code, os.strerror(code) if full else error.message, path) from error


def _binary_mask(mask, image: np.ndarray, what: str, source_id: str) -> np.ndarray | None:
    """uint8 [H, W, 1] of 0/255 from any mask the size of `image` (None stays None)."""
    if mask is None:
        return None
    mask = np.asarray(mask)
    mask = mask[..., None] if mask.ndim == 2 else mask
    if mask.shape[:2] != image.shape[:2]:
        raise ValueError(f"{what} for '{source_id}' has shape {mask.shape}, image {image.shape}")
    return np.where(mask > 0, 255, 0).astype(np.uint8)


def _empty_stats(num_classes: int, channels: int) -> dict:
    return {"count": 0, "class_counts": [0] * num_classes, "with_mask": 0, "pixel_sum": [0.0] * channels,
            "pixel_sum_squares": [0.0] * channels, "pixel_count": 0}


def _merge(total: dict, stats: dict) -> None:
    """Adds `stats` (an example's or a shard's) into `total`, key by key (lists element-wise)."""
    for key, value in stats.items():
        total[key] = [a + b for a, b in zip(total[key], value)] if isinstance(value, list) else total[key] + value


class _SplitState:
    def __init__(self, num_classes: int, channels: int):
        self.buffer: list[bytes] = []
        self.pending = _empty_stats(num_classes, channels)  # statistics of the buffered records
        self.pending_skipped: list[tuple[str, str]] = []
        self.shards: list[dict] = []  # journal entries of finished shards
        self.consumed = 0  # items offered (written or skipped), in converter order
        self.resume_point = 0  # items covered by verified shards of an earlier run
        self.examples_per_shard = 0
        self.sizes: list[int] = []


class DatasetWriter:
    """Writes examples into `out_dir/<split>-NNNNN.tfrecord` shards plus `manifest.json`.

    Args:
        out_dir: output folder (created).
        dataset_name: free-text name stored in the manifest.
        class_names: one name per label.
        multi_label: whether labels are multi-hot vectors.
        channels: image channels (1 grayscale, 3 RGB).
        shard_bytes: target shard size (fixes the examples per shard from the first records).
        shard_examples: examples per shard (0: derived from `shard_bytes`).
        salt: secret used to hash patient ids (`hash_patient_id`).
        resume: continue an interrupted conversion into `out_dir` (see the module docstring); refused
            when the journal's fingerprint, layout options or salt differ from this run's.
        fingerprint: a digest of the converter's inputs and options (items in order, labels, policy, ...).
        encoding: how images are stored, one of `tfxmed.data.features.ENCODINGS` ("auto": raw pixels for
            small images, PNG for large ones); recorded in the manifest.
    """

    def __init__(
        self,
        out_dir: str,
        dataset_name: str,
        class_names: Sequence[str],
        multi_label: bool = False,
        channels: int = 1,
        shard_bytes: int = DEFAULT_SHARD_BYTES,
        shard_examples: int = 0,
        salt: str = "",
        resume: bool = False,
        fingerprint: str = "",
        encoding: str = "auto",
    ):
        if encoding not in features.ENCODINGS:
            raise Refusal(f"encoding must be one of {', '.join(features.ENCODINGS)}; got '{encoding}'")
        self.encoding = encoding
        self.out_dir = out_dir
        self.dataset_name = dataset_name
        self.class_names = list(class_names)
        self.multi_label = multi_label
        self.channels = channels
        self.shard_bytes = shard_bytes
        self.shard_examples = shard_examples
        if not salt:  # never an empty HMAC key: anyone could re-hash candidate ids
            from tfrecords_tools.salt import resolve_salt

            salt = resolve_salt()
        self.salt = salt
        self._splits: dict[str, _SplitState] = {}
        self._refused: list[tuple[str, str]] = []
        self._closed = False
        # What a resumed run must match: the converter's inputs and options, the layout, the salt.
        self._identity = {"fingerprint": fingerprint, "class_names": self.class_names, "channels": channels,
                          "multi_label": multi_label, "shard_examples": shard_examples, "shard_bytes": shard_bytes,
                          "encoding": encoding, "salt_check": hash_patient_id("tfxmed salt check", salt)}
        self._claim = contextlib.ExitStack()
        self._claim.enter_context(claim_output(out_dir, writer=True))  # refuses a foreign folder; holds out_dir/.lock
        try:
            journal = os.path.join(out_dir, JOURNAL_NAME)
            if resume:
                self._resume()
            elif exists(journal):
                remove(journal)  # a fresh run: an older journal must never be adopted later
        except BaseException:
            self.release()
            raise

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()

    def release(self) -> None:
        """Releases the output folder's lock (`close` does it too); the shards written so far stay."""
        self._claim.close()

    def _state(self, split: str) -> _SplitState:
        if split not in self._splits:
            self._splits[split] = _SplitState(len(self.class_names), self.channels)
        return self._splits[split]

    def _resume(self) -> None:
        """Keeps each split's journaled shards up to the first one missing or changed on disk."""
        path = os.path.join(self.out_dir, JOURNAL_NAME)
        if not exists(path):
            return
        with open_file(path) as stream:
            journal = json.load(stream)
        changed = sorted(key for key, value in self._identity.items() if journal.get(key) != value)
        if changed:
            raise Refusal(f"{path}: the interrupted conversion in {self.out_dir} differs in {', '.join(changed)} "
                             "(other inputs, options or salt); re-run with --restart or use a fresh --out")
        for split, entry in journal["splits"].items():
            state = self._state(split)
            state.examples_per_shard = entry["examples_per_shard"]
            for shard in entry["shards"]:
                file = os.path.join(self.out_dir, shard["file"])
                if not exists(file) or file_sha256(file) != shard["sha256"]:
                    break
                state.shards.append(shard)
                state.resume_point = shard["consumed"]

    def add(self, split: str, image: np.ndarray, label, mask: np.ndarray | None = None, patient_id: str = "",
            source_id: str = "", label_weight: Sequence[float] | None = None, fold: int = -1,
            synthetic: bool = False, confounder: np.ndarray | None = None) -> None:
        """Adds one example. `label` is a class index (single-label) or a multi-hot vector."""
        if self.take_covered(split):  # already in a finished shard
            return
        record, stats = encode_example(image, label, len(self.class_names), self.multi_label, self.channels, split,
                                       mask, hash_patient_id(patient_id, self.salt), source_id, label_weight, fold,
                                       synthetic, confounder, self.encoding)
        self.add_encoded(split, record, stats)

    def add_encoded(self, split: str, record: bytes, stats: dict) -> None:
        """Adds a record made by `encode_example` (for converters that encode in worker processes)."""
        state = self._state(split)
        state.consumed += 1
        if state.consumed <= state.resume_point:
            return
        state.buffer.append(record)
        state.sizes.append(len(record))
        _merge(state.pending, stats)
        if not state.examples_per_shard and (self.shard_examples or len(state.buffer) >= PROBE_RECORDS):
            mean = float(np.mean(state.sizes[:PROBE_RECORDS]))
            state.examples_per_shard = self.shard_examples or max(1, int(self.shard_bytes // max(mean, 1.0)))
        if state.examples_per_shard and len(state.buffer) >= state.examples_per_shard:
            self._flush(split)

    def take_covered(self, split: str) -> bool:
        """True (and counted) when `split`'s next item is in a finished shard: the caller skips reading it."""
        state = self._state(split)
        if state.consumed < state.resume_point:
            state.consumed += 1
            return True
        return False

    def note_skipped(self, item: str, reason: str) -> None:
        """Records an item the converter refused before it had a split (e.g. a CSV row without a label)."""
        self._refused.append((item, reason))

    def skip(self, split: str, item: str, reason: str) -> None:
        """Records an item that could not be written (reported in `skipped.csv`)."""
        state = self._state(split)
        state.consumed += 1
        if state.consumed > state.resume_point:
            state.pending_skipped.append((item, reason))

    def _flush(self, split: str) -> None:
        state = self._splits[split]
        if not state.buffer and not (state.pending_skipped and state.shards):
            return  # nothing to write (skipped items stay pending until a shard can carry them)
        if state.buffer:
            name = f"{split}-{len(state.shards):05d}.tfrecord"
            final = os.path.join(self.out_dir, name)
            _write_shard(final, state.buffer)
            state.shards.append({"file": name, "count": len(state.buffer), "sha256": file_sha256(final),
                                 "consumed": state.consumed, "stats": state.pending,
                                 "skipped": state.pending_skipped})
        elif state.shards:  # items skipped after the last shard: keep them with it
            state.shards[-1]["skipped"].extend(state.pending_skipped)
            state.shards[-1]["consumed"] = state.consumed
        state.buffer, state.sizes = [], []
        state.pending, state.pending_skipped = _empty_stats(len(self.class_names), self.channels), []
        self._write_journal()

    def _write_journal(self) -> None:
        write_json_atomic({
            **self._identity,
            "splits": {split: {"examples_per_shard": state.examples_per_shard, "shards": state.shards}
                       for split, state in self._splits.items()},
        }, os.path.join(self.out_dir, JOURNAL_NAME))

    @property
    def skipped(self) -> list[tuple[str, str]]:
        """Every skipped (item, reason), from resumed shards too, in split order."""
        return [*self._refused, *(entry for state in self._splits.values()
                for entry in [*(tuple(e) for shard in state.shards for e in shard["skipped"]), *state.pending_skipped])]

    def close(self, extra: dict | None = None) -> dict:
        """Flushes every split and writes `manifest.json` (and `skipped.csv`); returns the manifest."""
        try:
            return self._close(extra)
        finally:
            self.release()

    def _close(self, extra: dict | None) -> dict:
        skipped = self.skipped
        for split in self._splits:
            self._flush(split)
        totals = {}
        for split, state in self._splits.items():
            total = _empty_stats(len(self.class_names), self.channels)
            for shard in state.shards:
                _merge(total, shard["stats"])
            totals[split] = total
        table = io.StringIO(newline="")
        csv.writer(table).writerows([("item", "reason"), *skipped])
        write_text_atomic(table.getvalue(), os.path.join(self.out_dir, "skipped.csv"))
        train = totals.get("train")
        if train is None or train["pixel_count"] == 0:
            raise Refusal(f"{self.out_dir}: no training examples were written (see skipped.csv for the items "
                          "refused): the manifest needs the train split's μ/σ")
        mean = np.array(train["pixel_sum"]) / train["pixel_count"]
        std = np.sqrt(np.maximum(np.array(train["pixel_sum_squares"]) / train["pixel_count"] - mean**2, 0.0))
        manifest = {
            "schema_version": features.SCHEMA_VERSION,
            "dataset": self.dataset_name,
            "class_names": self.class_names,
            "num_classes": len(self.class_names),
            "multi_label": self.multi_label,
            "channels": self.channels,
            "encoding": self.encoding,
            "pixel_mean": [float(v) for v in mean],
            "pixel_std": [float(v) for v in std],
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "splits": {
                split: {
                    "count": totals[split]["count"],
                    "with_mask": totals[split]["with_mask"],
                    "class_counts": dict(zip(self.class_names, totals[split]["class_counts"])),
                    "shards": [{k: shard[k] for k in ("file", "count", "sha256")} for shard in state.shards],
                }
                for split, state in self._splits.items()
            },
        }
        manifest["skipped"] = len(skipped)
        manifest.update(extra or {})
        write_json_atomic(manifest, os.path.join(self.out_dir, MANIFEST_NAME))
        self._closed = True
        return manifest
