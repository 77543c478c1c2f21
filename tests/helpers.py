"""Helpers the tests share (fixtures live in conftest.py and use these)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_CONFIG = os.path.join(REPO, "configs", "tiny.yaml")


class Killed(RuntimeError):
    """Raised by `kill_after_epoch`'s callback: a training process dying."""


def kill_after_epoch(epoch: int):
    """A Keras callback that simulates the process dying right after `epoch`'s backup was written."""
    import keras

    class KillAfterEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, finished, logs=None):
            if finished == epoch:
                raise Killed(f"killed after epoch {epoch}")

    return KillAfterEpoch()


def run_tiny_command(module, tmp_path, *args):
    """Runs `python -m module` on the tiny config for one epoch; returns its JSON summary."""
    result = subprocess.run(
        [sys.executable, "-m", module, "--config", TINY_CONFIG, *args,
         "--set", f"data.tfrecord_dir={tmp_path / 'data'}",
         "--set", "train.epochs=1", "--set", "train.tensorboard_images=0"],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])["summary"]


def write_dicom(path, pixels, photometric="MONOCHROME2", slope=1.0, intercept=0.0, window=None, frames=1,
                with_pixels=True, patient_id="MRN-0042"):
    """Writes a 12-bit monochrome DICOM file with identifying tags (a patient name, id and institution)."""
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.PatientName, ds.PatientID, ds.InstitutionName = "Doe^Jane", patient_id, "St Elsewhere"
    ds.Modality = "CR"
    ds.Rows, ds.Columns = pixels.shape[-2:]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
    if window:
        ds.WindowCenter, ds.WindowWidth = window
    if frames > 1:
        ds.NumberOfFrames = frames
    if with_pixels:
        ds.PixelData = pixels.astype(np.uint16).tobytes()
    ds.save_as(path, enforce_file_format=True)


COUNTS = {"train": 512, "val": 64, "test": 64}


def learnable_npz(path, rng, kind):
    """28-px images whose class is visible: class c brightens horizontal band c (left-right flips keep it)."""
    arrays = {}
    for split, count in COUNTS.items():
        if kind == "multi_label":
            labels = rng.integers(0, 2, (count, 3))
        else:
            labels = (np.arange(count) % (2 if kind == "binary" else 4)).reshape(-1, 1)
        images = rng.normal(70, 20, (count, 28, 28)).clip(0, 255)
        for i, row in enumerate(labels):
            for c in (np.flatnonzero(row) if kind == "multi_label" else row):
                images[i, 7 * int(c): 7 * int(c) + 7] += 120
        images = images.clip(0, 255).astype(np.uint8)
        arrays[f"{split}_images"] = np.repeat(images[..., None], 3, -1) if kind == "multi_class" else images
        arrays[f"{split}_labels"] = labels
    np.savez(path, **arrays)


def expected_calibration(kind: str, calibration: dict) -> str:
    """The calibration `auto` takes for a `learnable_npz` flavour: per-label Platt for multi-label, a
    temperature for more than two classes; for two classes the one its out-of-fold choice on val recorded."""
    return {"binary": calibration.get("selection", {}).get("method"), "multi_class": "temperature",
            "multi_label": "platt"}[kind]
