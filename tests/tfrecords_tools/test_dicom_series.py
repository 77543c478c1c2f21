"""One DICOM series → a volume: slices ordered by position whatever the file order, HU from the rescale, and the
refusals (a missing slice, two series in one folder, two slices at one position)."""

import os

import numpy as np
import pytest

from tfrecords_tools.dicom_series import read_series

IDENTIFYING = (b"Doe^Jane", b"MRN-0042", b"20250314", b"19700101", b"St Elsewhere")


def write_series(folder, volume, spacing=2.5, series_uid=None, positions=None, patient_id="MRN-0042", seed=0,
                 prefix="IM"):
    """Writes `volume` (uint16 [D, H, W], stored values; HU = value − 1024) as one CT slice per file, in a
    shuffled file order with scrambled InstanceNumbers, and with identifying tags a converter must drop."""
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    os.makedirs(folder, exist_ok=True)
    series_uid = series_uid or generate_uid()
    order = np.random.default_rng(seed).permutation(len(volume))
    positions = positions if positions is not None else [10.0 + spacing * k for k in range(len(volume))]
    for file_index, k in enumerate(order):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = CTImageStorage, generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = pydicom.Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
        ds.PatientName, ds.PatientID, ds.InstitutionName = "Doe^Jane", patient_id, "St Elsewhere"
        ds.StudyDate, ds.PatientBirthDate, ds.Modality = "20250314", "19700101", "CT"
        ds.SeriesInstanceUID, ds.InstanceNumber = series_uid, int(len(volume) - file_index)
        ds.ImagePositionPatient = [-50.0, -60.0, float(positions[k])]
        ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
        ds.PixelSpacing = [0.7, 0.8]
        ds.Rows, ds.Columns = volume.shape[1:]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
        ds.PixelData = volume[k].astype(np.uint16).tobytes()
        ds.save_as(os.path.join(folder, f"{prefix}{file_index:04d}.dcm"), enforce_file_format=True)


def _stored(rng, depth=6):
    return rng.integers(0, 2000, (depth, 8, 10)).astype(np.uint16)


def test_slices_are_ordered_by_position_and_rescaled_to_hounsfield_units(tmp_path, rng):
    stored = _stored(rng)
    write_series(tmp_path / "s", stored)
    series = read_series(str(tmp_path / "s"))
    np.testing.assert_array_equal(series.volume, stored.astype(np.int16) - 1024)
    assert series.spacing == pytest.approx((2.5, 0.7, 0.8))
    assert series.direction == pytest.approx((0, 0, 1, 0, 1, 0, 1, 0, 0))  # slices along +z, rows +y, columns +x
    assert series.patient_id == "MRN-0042" and series.volume.dtype == np.int16


def test_a_missing_slice_two_series_or_a_repeated_position_are_refused_with_the_reason(tmp_path, rng):
    stored = _stored(rng)
    write_series(tmp_path / "gap", stored, positions=[0, 2.5, 5, 10, 12.5, 15])
    with pytest.raises(ValueError, match=r"a gap between slices at 5.00 and 10.00 mm .* a slice is missing"):
        read_series(str(tmp_path / "gap"))
    write_series(tmp_path / "mixed", stored[:3])
    write_series(tmp_path / "mixed", stored[3:], positions=[20, 22.5, 25], seed=1, prefix="OTHER")
    with pytest.raises(ValueError, match="2 different SeriesInstanceUID values in one folder: two series mixed"):
        read_series(str(tmp_path / "mixed"))
    write_series(tmp_path / "twice", stored[:3], positions=[0, 2.5, 2.5])
    with pytest.raises(ValueError, match="two slices at one position"):
        read_series(str(tmp_path / "twice"))
    os.makedirs(tmp_path / "empty")
    (tmp_path / "empty" / "notes.txt").write_text("not dicom")
    with pytest.raises(ValueError, match="no DICOM slices"):
        read_series(str(tmp_path / "empty"))
