"""DICOM images via pydicom: modality LUT (rescale slope/intercept), VOI LUT / windowing, MONOCHROME1.

`read_dicom(path)` returns uint8 pixels and the PatientID (which callers hash; nothing else from the
header is kept: no names, dates or institution tags reach records, manifests or logs). Files without
pixel data and multi-frame files are refused with a message naming the file.
"""

from __future__ import annotations

import numpy as np

__all__ = ["read_dicom", "dicom_patient_id", "header_patient_id", "is_dicom_path", "linear_window"]


def is_dicom_path(path: str) -> bool:
    return path.lower().endswith((".dcm", ".dicom"))


def dicom_patient_id(path: str) -> str:
    """The PatientID of a DICOM file, read from the header only."""
    import pydicom

    return str(getattr(pydicom.dcmread(path, stop_before_pixels=True), "PatientID", "") or "")


def header_patient_id(path: str) -> str:
    """A DICOM file's PatientID for grouping ("" for other files or unreadable headers, which are
    reported when their pixels are read)."""
    if not is_dicom_path(path):
        return ""
    try:
        return dicom_patient_id(path)
    except Exception:
        return ""


def read_dicom(path: str) -> tuple[np.ndarray, str]:
    """(uint8 [H, W] image, PatientID) of a single-frame grayscale DICOM file."""
    try:
        import pydicom
        from pydicom.pixels import apply_modality_lut, apply_voi_lut
    except ImportError as error:
        raise ValueError(f"{path}: reading DICOM needs pydicom >= 3 (pip install 'tfxmed[data]')") from error

    dataset = pydicom.dcmread(path)
    if "PixelData" not in dataset:
        raise ValueError(f"{path}: DICOM without pixel data")
    frames = int(getattr(dataset, "NumberOfFrames", 1) or 1)
    if frames > 1:
        raise ValueError(f"{path}: multi-frame DICOM ({frames} frames) is not supported; export one file per frame")
    if int(getattr(dataset, "SamplesPerPixel", 1)) != 1:
        raise ValueError(f"{path}: expected a grayscale DICOM (SamplesPerPixel 1)")
    values = apply_modality_lut(dataset.pixel_array, dataset).astype(np.float64)  # slope/intercept → e.g. HU
    if "VOILUTSequence" in dataset:
        values = apply_voi_lut(values, dataset).astype(np.float64)
        scaled = (values - values.min()) / max(float(np.ptp(values)), 1e-12)
    elif "WindowCenter" in dataset and "WindowWidth" in dataset:
        scaled = linear_window(values, float(np.atleast_1d(dataset.WindowCenter)[0]),
                               float(np.atleast_1d(dataset.WindowWidth)[0]))
    else:
        scaled = (values - values.min()) / max(float(np.ptp(values)), 1e-12)
    if getattr(dataset, "PhotometricInterpretation", "MONOCHROME2") == "MONOCHROME1":
        scaled = 1.0 - scaled  # MONOCHROME1: high values are dark
    return np.round(scaled * 255).astype(np.uint8), str(getattr(dataset, "PatientID", "") or "")


def linear_window(values: np.ndarray, center: float, width: float) -> np.ndarray:
    """DICOM PS3.3 C.11.2.1.2 "LINEAR" VOI window, mapped to [0, 1]."""
    if width < 1:
        raise ValueError(f"window width must be >= 1; got {width}")
    if width == 1:
        return (values > center - 0.5).astype(np.float64)
    return np.clip((values - (center - 0.5)) / (width - 1) + 0.5, 0.0, 1.0)
