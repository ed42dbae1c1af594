"""Synthetic CT studies (explicit VR little endian, 16-bit, unique UIDs) for tests, demos and the
benchmark. No numpy: the pixel data is a deterministic byte pattern per slice."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, CTImageStorage, ExplicitVRLittleEndian, generate_uid


@dataclass(frozen=True)
class SyntheticStudy:
    folder: Path
    study_instance_uid: str
    sop_instance_uids: tuple[str, ...]
    bytes_total: int


def _pixels(rows: int, columns: int, index: int) -> bytes:
    """A 12-bit ramp, shifted per slice, as little-endian 16-bit words."""
    row = bytearray()
    for x in range(columns):
        row += ((x * 4 + index * 16) % 4096).to_bytes(2, "little")
    return bytes(row) * rows


def write_ct_study(
    folder: str | Path,
    count: int,
    *,
    rows: int = 512,
    columns: int = 512,
    study_instance_uid: str | None = None,
    series: int = 1,
    patient_id: str = "SYN0001",
    patient_name: str = "TEST^SYNTHETIC",
    accession_no: str = "ACC000000001",
    name_prefix: str = "",
) -> SyntheticStudy:
    """Write ``count`` CT slices (spread over ``series`` series) below ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    study = study_instance_uid or generate_uid()
    series_uids = [generate_uid() for _ in range(max(series, 1))]
    pixel_cache: dict[int, bytes] = {}
    uids, total = [], 0
    for i in range(count):
        sop = generate_uid()
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = sop
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = sop
        ds.StudyInstanceUID = study
        ds.SeriesInstanceUID = series_uids[i % len(series_uids)]
        ds.SeriesNumber = i % len(series_uids) + 1
        ds.InstanceNumber = i + 1
        ds.PatientName = patient_name
        ds.PatientID = patient_id
        ds.AccessionNumber = accession_no
        ds.StudyDate = "20260110"
        ds.StudyTime = "093000"
        ds.Modality = "CT"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.SliceThickness = "1.0"
        ds.ImagePositionPatient = [0, 0, i]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing = [0.7, 0.7]
        ds.RescaleIntercept = "-1024"
        ds.RescaleSlope = "1"
        ds.Rows, ds.Columns = rows, columns
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.PixelData = pixel_cache.setdefault(i % 16, _pixels(rows, columns, i % 16))
        path = folder / f"{name_prefix}{i + 1:05d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        uids.append(sop)
        total += path.stat().st_size
    return SyntheticStudy(folder, study, tuple(uids), total)
