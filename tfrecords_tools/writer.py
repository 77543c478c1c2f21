"""Sharded, atomic TFRecord writing with a manifest (counts, shard checksums, training μ/σ).

Every converter feeds `DatasetWriter.add`; shards are written to a temporary name and renamed when
complete, so a killed conversion never leaves a half-written shard under a final name.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import json
import os
from typing import Sequence

import numpy as np
import tensorflow as tf

from tfxmed.data import features

__all__ = ["DatasetWriter", "hash_patient_id", "load_manifest", "MANIFEST_NAME", "write_json_atomic"]

MANIFEST_NAME = "manifest.json"
DEFAULT_SHARD_BYTES = 100 * 1024 * 1024


def hash_patient_id(patient_id: str, salt: str) -> str:
    """A salted HMAC-SHA256 of a patient id (hex, 32 chars); the raw id is never stored."""
    if not patient_id:
        return ""
    return hmac.new(salt.encode(), patient_id.encode(), hashlib.sha256).hexdigest()[:32]


def write_json_atomic(payload: dict, path: str) -> None:
    """Writes JSON to `path` through a temporary file and a rename."""
    temporary = f"{path}.tmp"
    with open(temporary, "w", encoding="utf-8") as stream:
        json.dump(payload, stream, indent=2, allow_nan=False)
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(temporary, path)


def load_manifest(directory: str) -> dict:
    """Reads `manifest.json` of a converted dataset, with a clear error when it is missing."""
    path = os.path.join(directory, MANIFEST_NAME)
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"{path} not found: convert a dataset first (python -m tfrecords_tools.convert ...)"
        )
    with open(path, encoding="utf-8") as stream:
        return json.load(stream)


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class _SplitState:
    def __init__(self, num_classes: int, channels: int):
        self.buffer: list[bytes] = []
        self.buffer_bytes = 0
        self.shards: list[dict] = []
        self.count = 0
        self.class_counts = np.zeros(num_classes, dtype=np.int64)
        self.with_mask = 0
        self.pixel_sum = np.zeros(channels, dtype=np.float64)
        self.pixel_sum_squares = np.zeros(channels, dtype=np.float64)
        self.pixel_count = 0


class DatasetWriter:
    """Writes examples into `out_dir/<split>-NNNNN.tfrecord` shards plus `manifest.json`.

    Args:
        out_dir: output folder (created).
        dataset_name: free-text name stored in the manifest.
        class_names: one name per label.
        multi_label: whether labels are multi-hot vectors.
        channels: image channels (1 grayscale, 3 RGB).
        shard_bytes: target shard size; a shard is closed once its examples reach this many bytes.
        shard_examples: optional cap of examples per shard (0 = none).
        salt: secret used to hash patient ids (`hash_patient_id`).
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
    ):
        self.out_dir = out_dir
        self.dataset_name = dataset_name
        self.class_names = list(class_names)
        self.multi_label = multi_label
        self.channels = channels
        self.shard_bytes = shard_bytes
        self.shard_examples = shard_examples
        self.salt = salt
        self._splits: dict[str, _SplitState] = {}
        self._closed = False
        os.makedirs(out_dir, exist_ok=True)

    def _state(self, split: str) -> _SplitState:
        if split not in self._splits:
            self._splits[split] = _SplitState(len(self.class_names), self.channels)
        return self._splits[split]

    def add(
        self,
        split: str,
        image: np.ndarray,
        label: int | Sequence[float],
        mask: np.ndarray | None = None,
        patient_id: str = "",
        source_id: str = "",
        label_weight: Sequence[float] | None = None,
        fold: int = -1,
        synthetic: bool = False,
    ) -> None:
        """Adds one example. `label` is a class index (single-label) or a multi-hot vector."""
        image = np.asarray(image)
        if image.ndim == 2:
            image = image[..., None]
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != self.channels:
            raise ValueError(
                f"image for '{source_id or split}' must be uint8 [H, W, {self.channels}], "
                f"got {image.dtype} {image.shape}"
            )
        num_classes = len(self.class_names)
        if self.multi_label:
            vector = np.asarray(label, dtype=np.float32).reshape(-1)
            if vector.shape != (num_classes,):
                raise ValueError(f"label for '{source_id}' must have {num_classes} entries, got {vector.shape}")
            index = -1
        else:
            index = int(label)
            if not 0 <= index < num_classes:
                raise ValueError(f"label for '{source_id}' must be in [0, {num_classes}), got {label}")
            vector = np.eye(num_classes, dtype=np.float32)[index]
        if mask is not None:
            mask = np.asarray(mask)
            mask = mask[..., None] if mask.ndim == 2 else mask
            if mask.shape[:2] != image.shape[:2]:
                raise ValueError(f"mask for '{source_id}' has shape {mask.shape}, image {image.shape}")
            mask = np.where(mask > 0, 255, 0).astype(np.uint8)
        record = features.serialize(
            features.RecordFields(
                image=image,
                label_vector=vector,
                label_index=index,
                mask=mask,
                label_weight=None if label_weight is None else np.asarray(label_weight, np.float32),
                patient_hash=hash_patient_id(patient_id, self.salt),
                source_id=source_id,
                split=split,
                fold=fold,
                synthetic=synthetic,
            )
        )
        state = self._state(split)
        state.buffer.append(record)
        state.buffer_bytes += len(record)
        state.count += 1
        state.class_counts += (vector > 0.5).astype(np.int64)
        state.with_mask += int(mask is not None)
        if split == "train" and not synthetic:
            pixels = image.reshape(-1, self.channels).astype(np.float64) / 255.0
            state.pixel_sum += pixels.sum(axis=0)
            state.pixel_sum_squares += (pixels**2).sum(axis=0)
            state.pixel_count += pixels.shape[0]
        full = state.buffer_bytes >= self.shard_bytes
        if full or (self.shard_examples and len(state.buffer) >= self.shard_examples):
            self._flush(split)

    def _flush(self, split: str) -> None:
        state = self._splits[split]
        if not state.buffer:
            return
        name = f"{split}-{len(state.shards):05d}.tfrecord"
        final = os.path.join(self.out_dir, name)
        temporary = os.path.join(self.out_dir, f".{name}.tmp")
        with tf.io.TFRecordWriter(temporary) as writer:
            for record in state.buffer:
                writer.write(record)
        os.replace(temporary, final)
        state.shards.append({"file": name, "count": len(state.buffer), "sha256": _sha256(final)})
        state.buffer, state.buffer_bytes = [], 0

    def close(self, extra: dict | None = None) -> dict:
        """Flushes every split and writes `manifest.json`; returns the manifest."""
        for split in self._splits:
            self._flush(split)
        train = self._splits.get("train")
        if train is None or train.pixel_count == 0:
            raise ValueError("no training examples were written: the manifest needs the train split's μ/σ")
        mean = train.pixel_sum / train.pixel_count
        std = np.sqrt(np.maximum(train.pixel_sum_squares / train.pixel_count - mean**2, 0.0))
        manifest = {
            "schema_version": features.SCHEMA_VERSION,
            "dataset": self.dataset_name,
            "class_names": self.class_names,
            "num_classes": len(self.class_names),
            "multi_label": self.multi_label,
            "channels": self.channels,
            "pixel_mean": [float(v) for v in mean],
            "pixel_std": [float(v) for v in std],
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "splits": {
                split: {
                    "count": state.count,
                    "with_mask": state.with_mask,
                    "class_counts": dict(zip(self.class_names, state.class_counts.tolist())),
                    "shards": state.shards,
                }
                for split, state in self._splits.items()
            },
        }
        manifest.update(extra or {})
        write_json_atomic(manifest, os.path.join(self.out_dir, MANIFEST_NAME))
        self._closed = True
        return manifest
