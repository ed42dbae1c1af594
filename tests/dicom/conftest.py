"""Fixtures of the DICOM tests: Orthanc peers (orthanc.py), dcmtk's storescp and a peer that chokes on
chosen instances (peers.py), and settings pointing at the front-end processor."""

from __future__ import annotations

import pytest

from tests.dicom.orthanc import fep, orthanc_factory  # noqa: F401  (fixtures)
from tests.dicom.peers import choking_scp_factory, storescp_factory  # noqa: F401  (fixtures)


@pytest.fixture
def dicom_settings(settings, fep, tmp_path):  # noqa: F811
    """settings.DICOM aimed at the FEP Orthanc; study folders below tmp_path/incoming; fast retries."""
    incoming = tmp_path / "incoming"
    incoming.mkdir(exist_ok=True)
    settings.DICOM = {
        **settings.DICOM,
        "FEP_AE_TITLE": fep.aet,
        "FEP_HOST": "127.0.0.1",
        "FEP_PORT": fep.dicom_port,
        "CALLING_AE_TITLE": "HOSP_INTEROP",
        "FOLDER_ROOTS": [str(incoming)],
        "RETRIEVE_DIR": str(tmp_path / "retrieved"),
        "DIMSE_TIMEOUT": 20,
        "NETWORK_TIMEOUT": 20,
        "CONNECT_TIMEOUT": 5,
        "BATCH_SIZE": 500,
    }
    settings.DELIVERY = {**settings.DELIVERY, "BACKOFF_BASE_SECONDS": 0.4, "BACKOFF_CAP_SECONDS": 2}
    return settings.DICOM
