"""One DICOM series (a folder of single-frame slices) → an int16 volume with its geometry, via pydicom.

Slices are ordered by their position along the slice normal (ImagePositionPatient projected on the
cross product of the two ImageOrientationPatient directions), never by file name or InstanceNumber.
Refused with the reason: a folder holding two series (SeriesInstanceUID), slices of other orientations
or sizes, two slices at one position, and a gap (a missing slice: a step over 1.5× the median). The
rescale slope/intercept are applied (CT → Hounsfield units). Only the PatientID leaves the headers,
for the writer to hash; names, dates and every other tag stay behind.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

__all__ = ["SeriesVolume", "read_series"]

GAP_FACTOR = 1.5  # a step between neighbouring slices above this × the median step is a missing slice


@dataclasses.dataclass
class SeriesVolume:
    volume: np.ndarray  # int16 [D, H, W]
    spacing: tuple[float, float, float]  # mm: slices, rows, columns
    direction: tuple[float, ...]  # the D, H, W axes in patient LPS, row-major 3×3
    patient_id: str  # raw: hash it before it is stored (tfrecords_tools.writer.hash_patient_id)


def _slices(folder: str) -> list:
    import pydicom
    from pydicom.errors import InvalidDicomError

    datasets = []
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if not os.path.isfile(path):
            continue
        try:
            datasets.append(pydicom.dcmread(path))
        except (InvalidDicomError, OSError):
            continue  # not DICOM (a DICOMDIR's neighbours, notes): ignored
        except Exception as error:  # noqa: BLE001 - a DICOM file pydicom cannot parse: the series is refused
            raise ValueError(f"a slice could not be read ({type(error).__name__})") from error
    if not datasets:
        raise ValueError("no DICOM slices in the series folder")
    return datasets


def _same(datasets, keyword: str, what: str) -> object:
    values = {str(getattr(ds, keyword, None)) for ds in datasets}
    if len(values) != 1:
        raise ValueError(f"{len(values)} different {keyword} values in one folder: {what}")
    return getattr(datasets[0], keyword, None)


def read_series(folder: str) -> SeriesVolume:
    """Reads and checks one series folder (see the module docstring)."""
    from pydicom.pixels import apply_modality_lut

    datasets = _slices(folder)
    _same(datasets, "SeriesInstanceUID", "two series mixed; put one series per folder")
    missing = sorted({keyword for ds in datasets for keyword in ("ImagePositionPatient", "ImageOrientationPatient",
                                                                  "PixelSpacing", "PixelData") if keyword not in ds})
    if missing:
        raise ValueError(f"slices lack {', '.join(missing)}: not a volumetric series")
    orientation = np.asarray(_same(datasets, "ImageOrientationPatient", "slices of different orientations"), float)
    _same(datasets, "Rows", "slices of different sizes")
    _same(datasets, "Columns", "slices of different sizes")
    row_spacing, column_spacing = (float(v) for v in _same(datasets, "PixelSpacing", "different pixel spacings"))
    along_row, along_column = orientation[:3], orientation[3:]  # W (column index) and H (row index) directions
    normal = np.cross(along_row, along_column)
    positions = np.array([float(np.dot(np.asarray(ds.ImagePositionPatient, float), normal)) for ds in datasets])
    order = np.argsort(positions, kind="stable")
    positions = positions[order]
    steps = np.diff(positions)
    if len(steps) and np.any(steps < 1e-3):
        raise ValueError(f"two slices at one position ({positions[np.argmin(steps)]:.2f} mm along the normal)")
    slice_spacing = float(np.median(steps)) if len(steps) else 1.0
    if len(steps) and np.any(steps > GAP_FACTOR * slice_spacing):
        at = int(np.argmax(steps))
        raise ValueError(f"a gap between slices at {positions[at]:.2f} and {positions[at + 1]:.2f} mm along the normal "
                         f"({steps[at]:.2f} mm, the median step is {slice_spacing:.2f} mm): a slice is missing")
    try:
        volume = np.stack([apply_modality_lut(datasets[i].pixel_array, datasets[i]) for i in order]).astype(np.float64)
    except Exception as error:  # noqa: BLE001 - e.g. compressed pixel data without a decoder
        raise ValueError(f"the pixel data could not be decoded ({type(error).__name__})") from error
    if volume.min() < -32768 or volume.max() > 32767:
        raise ValueError(f"values in [{volume.min():g}, {volume.max():g}] after rescale do not fit int16")
    direction = (*normal, *along_column, *along_row)
    return SeriesVolume(np.round(volume).astype(np.int16), (slice_spacing, row_spacing, column_spacing),
                        tuple(float(v) for v in direction), str(getattr(datasets[0], "PatientID", "") or ""))
